/**
 * Upstream chunks -> the one normalized OpenAI chunk shape (SPEC §3.6):
 * constant identity, and per choice (choice.ts) `role` on the first delta,
 * reasoning per the group's mode, tool calls re-indexed with ids. Every
 * choice of `n > 1` keeps its index and state; top-level fields it does not
 * model (`system_fingerprint`, `service_tier`, provider extras) ride on the
 * chunks made from the upstream chunk that carried them. Complete bodies are
 * normalized in `completion.ts`.
 */
import type { ChatCompletionChunk, ChunkChoice, FinishReason, JsonObject, Usage } from '../types.js';
import { ChoiceNormalizer, type ChoiceSink } from './choice.js';
import { isJsonObject, type NormalizeOptions } from './shared.js';

// Callers import the whole normalization API from here.
export { completionHasOutput, completionRefused, normalizeCompletion, refusalFailure } from './completion.js';
export { generateToolCallId, isJsonObject, toFinishReason, type NormalizeOptions } from './shared.js';

/** `out` between calls: frozen, so a chunk built outside push/end fails loudly. */
const NO_OUTPUT = Object.freeze([]) as unknown as ChatCompletionChunk[];

/** Top-level chunk fields the normalizer sets itself; any other is passed on. */
export function isNormalizedChunkKey(key: string): boolean {
  return key === 'id' || key === 'object' || key === 'created' || key === 'model' || key === 'choices' || key === 'usage';
}

/**
 * Turns one upstream stream into normalized chunks. Feed every parsed upstream
 * chunk to `push` (the caller has already rejected `error` payloads), then call
 * `end` once when the upstream stream ends.
 */
export class StreamNormalizer implements ChoiceSink {
  private readonly opts: NormalizeOptions;
  private _id: string | undefined;
  private _created: number | undefined;
  private _model: string | undefined;
  /** Identity is frozen once the first chunk is emitted. */
  private locked = false;
  private _hasToken = false;
  private _usage: Usage | null = null;
  private ended = false;
  /** Choice 0 (nearly every stream has only it), and the others of `n > 1`, made when seen. */
  private first: ChoiceNormalizer | null = null;
  private others: Map<number, ChoiceNormalizer> | null = null;
  /**
   * Where the top-level extras of the next chunk opened come from: the
   * upstream chunk itself (no copy), or merged with what earlier chunks that
   * emitted nothing carried. Null when there are none.
   */
  private extras: JsonObject | null = null;
  /** The current upstream chunk, when it has extras: for the chunks after the first it makes. */
  private ownExtras: JsonObject | null = null;

  /** Chunks being built by the current `push`/`end` call. */
  private out: ChatCompletionChunk[] = NO_OUTPUT;

  constructor(opts: NormalizeOptions) {
    this.opts = opts;
  }

  /** A content, reasoning or tool-call token was produced (the commit point). */
  get hasToken(): boolean {
    return this._hasToken;
  }
  /**
   * The finish reason (of the lowest choice index) once every choice seen has
   * finished; null while one has not.
   */
  get finishReason(): FinishReason | null {
    const first = this.first;
    if (this.others === null) return first === null ? null : first.finishReason;
    let reason: FinishReason | null = first === null ? null : first.finishReason;
    if (first !== null && reason === null) return null;
    let lowest = first === null ? Infinity : 0;
    for (const choice of this.others.values()) {
      if (choice.finishReason === null) return null;
      if (choice.index < lowest) {
        lowest = choice.index;
        reason = choice.finishReason;
      }
    }
    return reason;
  }
  /** No choice produced a token, and one refused (`refusal` text): the provider's deliberate answer. */
  get refused(): boolean {
    if (this._hasToken) return false;
    if (this.first?.refused) return true;
    if (this.others !== null) for (const choice of this.others.values()) if (choice.refused) return true;
    return false;
  }
  /** A choice other than 0 was seen (`n > 1`). */
  get multiChoice(): boolean {
    return this.others !== null;
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
    this.takeExtras(raw);
    const choices = raw.choices;
    if (!Array.isArray(choices) || choices.length === 0) return [];
    const out: ChatCompletionChunk[] = [];
    this.out = out;
    for (let i = 0; i < choices.length; i++) {
      const choice: unknown = choices[i];
      if (!isJsonObject(choice)) continue;
      const index = typeof choice.index === 'number' && Number.isInteger(choice.index) && choice.index >= 0 ? choice.index : i;
      this.choice(index).push(choice);
    }
    // Nothing of this call may outlive it here: the stream can stay open for minutes.
    this.out = NO_OUTPUT;
    if (out.length > 0) this.extras = null;
    this.ownExtras = null;
    return out;
  }

  end(): ChatCompletionChunk[] {
    if (this.ended) return [];
    this.ended = true;
    const out: ChatCompletionChunk[] = [];
    this.out = out;
    this.first?.end();
    if (this.others !== null) for (const index of [...this.others.keys()].sort((a, b) => a - b)) this.others.get(index)!.end();
    if (this.opts.includeUsage && this._usage !== null) {
      this.lockIdentity();
      const chunk: ChatCompletionChunk = {
        id: this.id,
        object: 'chat.completion.chunk',
        created: this.created,
        model: this.model,
        choices: [],
        usage: this._usage,
      };
      if (this.extras !== null) copyExtras(this.extras, chunk);
      out.push(chunk);
    }
    this.out = NO_OUTPUT;
    this.extras = null;
    return out;
  }

  /** ChoiceSink: a new output chunk for one choice. */
  open(choice: ChunkChoice): void {
    this.lockIdentity();
    const chunk: ChatCompletionChunk = {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [choice],
    };
    if (this.extras !== null) {
      copyExtras(this.extras, chunk);
      // Carried fields go on the next chunk made; the rest of this call's chunks get their own.
      this.extras = this.ownExtras;
    }
    this.out.push(chunk);
  }

  /** ChoiceSink: a choice produced its first token. */
  token(): void {
    this._hasToken = true;
  }

  private choice(index: number): ChoiceNormalizer {
    if (index === 0) return (this.first ??= new ChoiceNormalizer(0, this.opts, this));
    const others = (this.others ??= new Map());
    let choice = others.get(index);
    if (choice === undefined) {
      choice = new ChoiceNormalizer(index, this.opts, this);
      others.set(index, choice);
    }
    return choice;
  }

  /** Remember the chunk's own top-level fields (for…in: no key array on the common path). */
  private takeExtras(raw: JsonObject): void {
    let has = false;
    for (const key in raw) {
      if (!isNormalizedChunkKey(key) && raw[key] !== undefined) {
        has = true;
        break;
      }
    }
    const own = has ? raw : null;
    this.ownExtras = own;
    if (this.extras === null) this.extras = own;
    else if (own !== null) {
      // An earlier chunk emitted nothing: its fields wait for the next emitted chunk.
      const merged: JsonObject = {};
      copyExtras(this.extras, merged);
      copyExtras(own, merged);
      this.extras = merged;
    }
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
}

/** Copy `from`'s top-level fields that the normalizer does not set onto `to`. */
export function copyExtras(from: JsonObject, to: JsonObject): void {
  for (const key in from) {
    if (isNormalizedChunkKey(key)) continue;
    const value = from[key];
    if (value !== undefined) to[key] = value;
  }
}
