/**
 * Upstream chunks -> the one normalized OpenAI chunk shape (SPEC §3.6):
 * constant identity, `role` on the first delta, reasoning from any upstream form
 * delivered per the group's mode and never in the same delta as content, tool
 * calls re-indexed with ids, names sent once, `tool_calls` finish when calls
 * were made. Complete bodies are normalized in `completion.ts`.
 */
import type { ChatCompletionChunk, Delta, FinishReason, JsonObject, ToolCallDelta, Usage } from '../types.js';
import { isJsonObject, toFinishReason, generateToolCallId, fieldReasoning, stringifyArguments, type NormalizeOptions } from './shared.js';
import { ThinkSplitter } from './think.js';

// Callers import the whole normalization API from here.
export { completionHasOutput, normalizeCompletion } from './completion.js';
export { generateToolCallId, isJsonObject, toFinishReason, type NormalizeOptions } from './shared.js';

interface ToolSlot {
  /** Output index (0, 1, 2… in order of appearance). */
  index: number;
  /** The id the upstream gave, if any (to recognise later deltas of the call). */
  upstreamId: string | undefined;
  id: string;
  name: string | null;
  /** Its first delta (with id, type and name) has been emitted. */
  started: boolean;
  /** Arguments received before the name. */
  heldArgs: string;
}

/** `out` between calls: frozen, so a chunk built outside push/end fails loudly. */
const NO_OUTPUT = Object.freeze([]) as unknown as ChatCompletionChunk[];

const enum Kind {
  None,
  Reasoning,
  Content,
  Tools,
  Finish,
}

/**
 * Turns one upstream stream into normalized chunks. Feed every parsed upstream
 * chunk to `push` (the caller has already rejected `error` payloads), then call
 * `end` once when the upstream stream ends.
 */
export class StreamNormalizer {
  private readonly opts: NormalizeOptions;
  private _id: string | undefined;
  private _created: number | undefined;
  private _model: string | undefined;
  /** Identity is frozen once the first chunk is emitted. */
  private locked = false;
  private _hasToken = false;
  private _finishReason: FinishReason | null = null;
  private _usage: Usage | null = null;
  private ended = false;
  private roleSent = false;

  private splitter: ThinkSplitter | null = null;
  private sawFieldReasoning = false;
  /** Tags mode: a `<think>` was written to content and not yet closed. */
  private tagOpen = false;

  private readonly slots: ToolSlot[] = [];
  /** Made on the first tool call: most streams have none, and a Map costs ~180 bytes for the stream's life. */
  private slotByIndex: Map<number, ToolSlot> | null = null;
  private slotById: Map<string, ToolSlot> | null = null;
  private lastSlot: ToolSlot | undefined;
  private toolEmitted = false;

  /** Chunks being built by the current `push`/`end` call. */
  private out: ChatCompletionChunk[] = NO_OUTPUT;
  private cur: Delta | null = null;
  private curKind = Kind.None;

  constructor(opts: NormalizeOptions) {
    this.opts = opts;
  }

  /** A content, reasoning or tool-call token was produced (the commit point). */
  get hasToken(): boolean {
    return this._hasToken;
  }
  /** The finish reason emitted, or null while the upstream has not finished. */
  get finishReason(): FinishReason | null {
    return this._finishReason;
  }
  /** The last usage the upstream reported. */
  get usage(): Usage | null {
    return this._usage;
  }
  get id(): string {
    return this._id ?? this.opts.fallbackId;
  }
  get created(): number {
    return this._created ?? this.opts.fallbackCreated;
  }
  get model(): string {
    return this._model ?? this.opts.fallbackModel;
  }

  push(raw: JsonObject): ChatCompletionChunk[] {
    if (this.ended) return [];
    if (!this.locked) this.learnIdentity(raw);
    const usage = raw.usage;
    if (isJsonObject(usage)) this._usage = usage as Usage;
    if (this._finishReason !== null) return [];
    const choices = raw.choices;
    if (!Array.isArray(choices)) return [];
    const choice: unknown = choices[0];
    if (!isJsonObject(choice)) return [];

    const out: ChatCompletionChunk[] = [];
    this.begin(out);
    // A few servers send `message` instead of `delta` in stream chunks.
    const delta = choice.delta ?? choice.message;
    if (isJsonObject(delta)) this.readDelta(delta);
    const finish = choice.finish_reason;
    if (typeof finish === 'string' && finish !== '') this.finish(finish);
    // Nothing of this call may outlive it here: the stream can stay open for minutes.
    this.cur = null;
    this.out = NO_OUTPUT;
    return out;
  }

  end(): ChatCompletionChunk[] {
    if (this.ended) return [];
    this.ended = true;
    const out: ChatCompletionChunk[] = [];
    this.begin(out);
    if (this._finishReason === null) this.flush();
    if (this.opts.includeUsage && this._usage !== null) {
      this.lockIdentity();
      out.push({
        id: this.id,
        object: 'chat.completion.chunk',
        created: this.created,
        model: this.model,
        choices: [],
        usage: this._usage,
      });
    }
    // Nothing of this call may outlive it here: the stream can stay open for minutes.
    this.cur = null;
    this.out = NO_OUTPUT;
    return out;
  }

  private learnIdentity(raw: JsonObject): void {
    if (this._id === undefined && typeof raw.id === 'string' && raw.id !== '') this._id = raw.id;
    if (
      this._created === undefined &&
      typeof raw.created === 'number' &&
      Number.isFinite(raw.created)
    ) {
      this._created = raw.created;
    }
    if (this._model === undefined && typeof raw.model === 'string' && raw.model !== '') {
      this._model = raw.model;
    }
  }

  private lockIdentity(): void {
    if (this.locked) return;
    this.locked = true;
    this._id ??= this.opts.fallbackId;
    this._created ??= this.opts.fallbackCreated;
    this._model ??= this.opts.fallbackModel;
  }

  private begin(out: ChatCompletionChunk[]): void {
    this.out = out;
    this.cur = null;
    this.curKind = Kind.None;
  }

  /** The delta of the chunk being built for `kind`, starting a new chunk on a change of kind. */
  private deltaFor(kind: Kind, finish: FinishReason | null = null): Delta {
    if (this.cur !== null && this.curKind === kind) return this.cur;
    const delta: Delta = {};
    if (!this.roleSent) {
      delta.role = 'assistant';
      this.roleSent = true;
    }
    this.lockIdentity();
    this.out.push({
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
    this.cur = delta;
    this.curKind = kind;
    return delta;
  }

  private readDelta(d: JsonObject): void {
    const reasoning = fieldReasoning(d);
    if (reasoning !== '') {
      this.sawFieldReasoning = true;
      this.reasoning(reasoning);
    }
    const details = d.reasoning_details;
    if (Array.isArray(details) && this.opts.reasoning === 'field') {
      const delta = this.deltaFor(Kind.Reasoning);
      const prev = delta.reasoning_details;
      delta.reasoning_details = Array.isArray(prev) ? prev.concat(details) : details;
    }
    const content = d.content;
    if (typeof content === 'string' && content !== '') this.content(content);
    const toolCalls = d.tool_calls;
    if (Array.isArray(toolCalls)) {
      for (const tc of toolCalls) if (isJsonObject(tc)) this.toolCall(tc);
    }
  }

  private content(text: string): void {
    let splitter = this.splitter;
    if (splitter === null) {
      // Reasoning already came in a field, so this upstream does not put it in content.
      const startInside = this.opts.thinkOpen && !this.sawFieldReasoning;
      splitter = this.splitter = new ThinkSplitter({ startInside });
    }
    if (splitter.passthrough) {
      this.contentText(text);
      return;
    }
    for (const seg of splitter.push(text)) {
      if (seg.kind === 'reasoning') this.reasoning(seg.text);
      else this.contentText(seg.text);
    }
  }

  private reasoning(text: string): void {
    this._hasToken = true;
    switch (this.opts.reasoning) {
      case 'field': {
        const delta = this.deltaFor(Kind.Reasoning);
        delta.reasoning_content = delta.reasoning_content === undefined ? text : delta.reasoning_content + text;
        return;
      }
      case 'tags':
        if (this.tagOpen) {
          this.appendContent(text);
        } else {
          this.tagOpen = true;
          this.appendContent('<think>' + text);
        }
        return;
      case 'strip':
        return;
    }
  }

  private contentText(text: string): void {
    this._hasToken = true;
    if (this.tagOpen) {
      this.tagOpen = false;
      this.appendContent('</think>\n\n' + text);
    } else {
      this.appendContent(text);
    }
  }

  private appendContent(text: string): void {
    const delta = this.deltaFor(Kind.Content);
    delta.content = typeof delta.content === 'string' ? delta.content + text : text;
  }

  private closeTag(): void {
    if (this.tagOpen) {
      this.tagOpen = false;
      this.appendContent('</think>\n\n');
    }
  }

  private toolCall(tc: JsonObject): void {
    const slotByIndex = (this.slotByIndex ??= new Map<number, ToolSlot>());
    const slotById = (this.slotById ??= new Map<string, ToolSlot>());
    const upstreamIndex = typeof tc.index === 'number' ? tc.index : undefined;
    const upstreamId = typeof tc.id === 'string' && tc.id !== '' ? tc.id : undefined;
    const fn = isJsonObject(tc.function) ? tc.function : undefined;
    const name = fn !== undefined && typeof fn.name === 'string' && fn.name !== '' ? fn.name : undefined;
    const args = fn === undefined ? '' : stringifyArguments(fn.arguments, '');

    let slot: ToolSlot | undefined;
    if (upstreamId !== undefined) {
      slot = slotById.get(upstreamId);
      if (slot === undefined && upstreamIndex !== undefined) {
        // An index first seen without an id may get its id later; a different
        // id at a used index is a new call (Ollama sends index 0 for every call).
        const atIndex = slotByIndex.get(upstreamIndex);
        if (atIndex !== undefined && atIndex.upstreamId === undefined) slot = atIndex;
      }
    } else if (upstreamIndex !== undefined) {
      slot = slotByIndex.get(upstreamIndex);
    } else if (name === undefined || this.lastSlot?.name == null) {
      // Gemini omits `index`: a delta without id continues the last call, unless
      // it names a function while the last call already has a name (early Gemini
      // sent parallel calls whole, without ids).
      slot = this.lastSlot;
    }
    if (slot === undefined) {
      slot = {
        index: this.slots.length,
        upstreamId,
        id: upstreamId ?? generateToolCallId(),
        name: null,
        started: false,
        heldArgs: '',
      };
      this.slots.push(slot);
      if (upstreamId !== undefined) slotById.set(upstreamId, slot);
    }
    if (upstreamIndex !== undefined) slotByIndex.set(upstreamIndex, slot);
    this.lastSlot = slot;

    if (slot.started) {
      // Names after the first are dropped: Open WebUI appends name deltas.
      if (args !== '') this.emitTool({ index: slot.index, function: { arguments: args } });
      return;
    }
    if (name !== undefined) slot.name = name;
    slot.heldArgs += args;
    if (slot.name !== null) this.startSlot(slot);
  }

  private startSlot(slot: ToolSlot): void {
    slot.started = true;
    const args = slot.heldArgs;
    slot.heldArgs = '';
    this.emitTool({
      index: slot.index,
      id: slot.id,
      type: 'function',
      function: { name: slot.name ?? '', arguments: args },
    });
  }

  private emitTool(tc: ToolCallDelta): void {
    this._hasToken = true;
    this.toolEmitted = true;
    this.closeTag();
    const delta = this.deltaFor(Kind.Tools);
    if (delta.tool_calls === undefined) delta.tool_calls = [tc];
    else delta.tool_calls.push(tc);
  }

  /** Releases held tag text and nameless tool calls, closes an open `<think>`. */
  private flush(): void {
    if (this.splitter !== null) {
      for (const seg of this.splitter.end()) {
        if (seg.kind === 'reasoning') this.reasoning(seg.text);
        else this.contentText(seg.text);
      }
    }
    for (const slot of this.slots) if (!slot.started) this.startSlot(slot);
    this.closeTag();
  }

  private finish(value: string): void {
    this.flush();
    let reason = toFinishReason(value);
    // Gemini ends streamed tool-call turns with `stop`.
    if (reason === 'stop' && this.toolEmitted) reason = 'tool_calls';
    this._finishReason = reason;
    this.deltaFor(Kind.Finish, reason);
    this.cur = null;
  }
}
