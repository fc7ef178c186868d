/**
 * One choice of an upstream stream -> its normalized deltas (SPEC §3.6): `role`
 * on its first delta, reasoning from any upstream form delivered per the
 * group's mode and never in the same delta as content, tool calls re-indexed
 * with ids and names sent once, `tool_calls` finish when calls were made.
 * Delta fields it does not model (`refusal`, `annotations`, `audio`…) and
 * `logprobs` pass through. A stream of `n > 1` has one of these per index.
 */
import type { ChunkChoice, Delta, FinishReason, JsonObject, ToolCallDelta } from '../types.js';
import { isJsonObject, toFinishReason, generateToolCallId, fieldReasoning, stringifyArguments, type NormalizeOptions } from './shared.js';
import { ThinkSplitter } from './think.js';

/** Where a choice's output goes: the stream normalizer that owns it. */
export interface ChoiceSink {
  /** A new output chunk carrying `choice`, with the stream's identity and top-level extras. */
  open(choice: ChunkChoice): void;
  /** A content, reasoning or tool-call token was produced (the commit point). */
  token(): void;
}

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

const enum Kind {
  None,
  Reasoning,
  Content,
  Tools,
  Finish,
}

export class ChoiceNormalizer {
  readonly index: number;
  readonly #opts: NormalizeOptions;
  readonly #sink: ChoiceSink;
  finishReason: FinishReason | null = null;
  /** A non-empty `refusal` was seen. */
  refused = false;
  #hasToken = false;
  #roleSent = false;

  #splitter: ThinkSplitter | null = null;
  #sawFieldReasoning = false;
  /** Tags mode: a `<think>` was written to content and not yet closed. */
  #tagOpen = false;

  readonly #slots: ToolSlot[] = [];
  /** Made on the first tool call: most streams have none, and a Map costs ~180 bytes for the stream's life. */
  #slotByIndex: Map<number, ToolSlot> | null = null;
  #slotById: Map<string, ToolSlot> | null = null;
  #lastSlot: ToolSlot | undefined;
  #toolEmitted = false;
  /** `logprobs` not yet on an emitted chunk (their tokens produced no delta yet). */
  #logprobs: unknown = null;

  /** The delta of the chunk being built by the current call, and its kind. */
  #cur: Delta | null = null;
  #curKind = Kind.None;

  constructor(index: number, opts: NormalizeOptions, sink: ChoiceSink) {
    this.index = index;
    this.#opts = opts;
    this.#sink = sink;
  }

  get hasToken(): boolean {
    return this.#hasToken;
  }

  /** One upstream choice object (`delta` or `message`, `finish_reason`, `logprobs`). */
  push(choice: JsonObject): void {
    this.#cur = null;
    this.#curKind = Kind.None;
    if (this.finishReason !== null) return;
    const logprobs = choice.logprobs;
    if (logprobs !== undefined && logprobs !== null) this.#logprobs = mergeLogprobs(this.#logprobs, logprobs);
    // A few servers send `message` instead of `delta` in stream chunks.
    const delta = choice.delta ?? choice.message;
    if (isJsonObject(delta)) this.#readDelta(delta);
    const finish = choice.finish_reason;
    if (typeof finish === 'string' && finish !== '') this.#finish(finish);
    // Nothing of this call may outlive it here: the stream can stay open for minutes.
    this.#cur = null;
  }

  /** The upstream stream ended: release what is held (only while unfinished). */
  end(): void {
    this.#cur = null;
    this.#curKind = Kind.None;
    if (this.finishReason === null) this.#flush();
    this.#cur = null;
  }

  /** The delta of the chunk being built for `kind`, starting a new chunk on a change of kind. */
  #deltaFor(kind: Kind, finish: FinishReason | null = null): Delta {
    if (this.#cur !== null && this.#curKind === kind) return this.#cur;
    const delta: Delta = {};
    if (!this.#roleSent) {
      delta.role = 'assistant';
      this.#roleSent = true;
    }
    const logprobs = this.#logprobs;
    this.#logprobs = null;
    this.#sink.open({ index: this.index, delta, logprobs, finish_reason: finish });
    this.#cur = delta;
    this.#curKind = kind;
    return delta;
  }

  #readDelta(d: JsonObject): void {
    const reasoning = fieldReasoning(d);
    if (reasoning !== '') {
      this.#sawFieldReasoning = true;
      this.#reasoning(reasoning);
    }
    const details = d.reasoning_details;
    if (Array.isArray(details) && this.#opts.reasoning === 'field') {
      const delta = this.#deltaFor(Kind.Reasoning);
      const prev = delta.reasoning_details;
      delta.reasoning_details = Array.isArray(prev) ? prev.concat(details) : details;
    }
    const content = d.content;
    if (typeof content === 'string' && content !== '') this.#content(content);
    const toolCalls = d.tool_calls;
    if (Array.isArray(toolCalls)) {
      for (const tc of toolCalls) if (isJsonObject(tc)) this.#toolCall(tc);
    }
    // Fields it does not model ride on the delta built from this one (for…in: no key array per chunk).
    for (const key in d) {
      if (isNormalizedDeltaKey(key)) continue;
      const value = d[key];
      // `refusal: null` and friends on every OpenAI delta say nothing.
      if (value === null || value === undefined || (key === 'refusal' && value === '')) continue;
      const delta = this.#cur ?? this.#deltaFor(Kind.Content);
      if (key === 'refusal' && typeof value === 'string') {
        this.refused = true;
        const prev = delta.refusal;
        delta.refusal = typeof prev === 'string' ? prev + value : value;
      } else {
        delta[key] = value;
      }
    }
  }

  #content(text: string): void {
    let splitter = this.#splitter;
    if (splitter === null) {
      // Reasoning already came in a field, so this upstream does not put it in content.
      const startInside = this.#opts.thinkOpen && !this.#sawFieldReasoning;
      splitter = this.#splitter = new ThinkSplitter({ startInside });
    }
    if (splitter.passthrough) {
      this.#contentText(text);
      return;
    }
    for (const seg of splitter.push(text)) {
      if (seg.kind === 'reasoning') this.#reasoning(seg.text);
      else this.#contentText(seg.text);
    }
  }

  #token(): void {
    if (this.#hasToken) return;
    this.#hasToken = true;
    this.#sink.token();
  }

  #reasoning(text: string): void {
    this.#token();
    switch (this.#opts.reasoning) {
      case 'field': {
        const delta = this.#deltaFor(Kind.Reasoning);
        delta.reasoning_content = delta.reasoning_content === undefined ? text : delta.reasoning_content + text;
        return;
      }
      case 'tags':
        if (this.#tagOpen) {
          this.#appendContent(text);
        } else {
          this.#tagOpen = true;
          this.#appendContent('<think>' + text);
        }
        return;
      case 'strip':
        return;
    }
  }

  #contentText(text: string): void {
    this.#token();
    if (this.#tagOpen) {
      this.#tagOpen = false;
      this.#appendContent('</think>\n\n' + text);
    } else {
      this.#appendContent(text);
    }
  }

  #appendContent(text: string): void {
    const delta = this.#deltaFor(Kind.Content);
    delta.content = typeof delta.content === 'string' ? delta.content + text : text;
  }

  #closeTag(): void {
    if (this.#tagOpen) {
      this.#tagOpen = false;
      this.#appendContent('</think>\n\n');
    }
  }

  #toolCall(tc: JsonObject): void {
    const slotByIndex = (this.#slotByIndex ??= new Map<number, ToolSlot>());
    const slotById = (this.#slotById ??= new Map<string, ToolSlot>());
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
    } else if (name === undefined || this.#lastSlot?.name == null) {
      // Gemini omits `index`: a delta without id continues the last call, unless
      // it names a function while the last call already has a name (early Gemini
      // sent parallel calls whole, without ids).
      slot = this.#lastSlot;
    }
    if (slot === undefined) {
      slot = {
        index: this.#slots.length,
        upstreamId,
        id: upstreamId ?? generateToolCallId(),
        name: null,
        started: false,
        heldArgs: '',
      };
      this.#slots.push(slot);
      if (upstreamId !== undefined) slotById.set(upstreamId, slot);
    }
    if (upstreamIndex !== undefined) slotByIndex.set(upstreamIndex, slot);
    this.#lastSlot = slot;

    if (slot.started) {
      // Names after the first are dropped: Open WebUI appends name deltas.
      if (args !== '') this.#emitTool({ index: slot.index, function: { arguments: args } });
      return;
    }
    if (name !== undefined) slot.name = name;
    slot.heldArgs += args;
    if (slot.name !== null) this.#startSlot(slot);
  }

  #startSlot(slot: ToolSlot): void {
    slot.started = true;
    const args = slot.heldArgs;
    slot.heldArgs = '';
    this.#emitTool({
      index: slot.index,
      id: slot.id,
      type: 'function',
      function: { name: slot.name ?? '', arguments: args },
    });
  }

  #emitTool(tc: ToolCallDelta): void {
    this.#token();
    this.#toolEmitted = true;
    this.#closeTag();
    const delta = this.#deltaFor(Kind.Tools);
    if (delta.tool_calls === undefined) delta.tool_calls = [tc];
    else delta.tool_calls.push(tc);
  }

  /** Releases held tag text and nameless tool calls, closes an open `<think>`. */
  #flush(): void {
    if (this.#splitter !== null) {
      for (const seg of this.#splitter.end()) {
        if (seg.kind === 'reasoning') this.#reasoning(seg.text);
        else this.#contentText(seg.text);
      }
    }
    for (const slot of this.#slots) if (!slot.started) this.#startSlot(slot);
    this.#closeTag();
  }

  #finish(value: string): void {
    this.#flush();
    let reason = toFinishReason(value);
    // Gemini ends streamed tool-call turns with `stop`.
    if (reason === 'stop' && this.#toolEmitted) reason = 'tool_calls';
    this.finishReason = reason;
    this.#deltaFor(Kind.Finish, reason);
    this.#cur = null;
  }
}

/** Delta fields the normalizer rewrites (or, for `role`, sends once itself). A switch: cheaper than a Set per key. */
function isNormalizedDeltaKey(key: string): boolean {
  switch (key) {
    case 'content':
    case 'role':
    case 'reasoning_content':
    case 'reasoning':
    case 'reasoning_details':
    case 'tool_calls':
      return true;
    default:
      return false;
  }
}

/** Logprobs of tokens that produced no delta yet, joined with the next ones (token lists appended). */
export function mergeLogprobs(prev: unknown, next: unknown): unknown {
  if (prev === null || prev === undefined) return next;
  if (!isJsonObject(prev) || !isJsonObject(next)) return next;
  const merged: JsonObject = { ...prev };
  for (const key in next) {
    const a = merged[key];
    const b = next[key];
    merged[key] = Array.isArray(a) && Array.isArray(b) ? a.concat(b) : b === null && a !== undefined ? a : b;
  }
  return merged;
}
