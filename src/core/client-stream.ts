/**
 * What a streaming client has received so far, and how output from a later
 * attempt is fitted onto it when a committed stream is resumed (SPEC §3.11):
 * one `id`, one `role`, one `finish_reason`, usage summed, and never a word
 * that contradicts what was already sent.
 */
import type { ChatCompletionChunk, Delta, Usage } from './types.js';
import { sumUsage } from './usage.js';

/**
 * Past this much text (~64k tokens, more than models write in one answer) no
 * resume can work: no endpoint takes it as a prefill or repeats it exactly.
 * Keeping it would only make every long stream hold its answer in memory.
 */
const MAX_RESUMABLE_CHARS = 256 * 1024;

/**
 * `+=` builds a V8 rope: one 32-byte cons cell per appended delta (~6 bytes of
 * text), all kept until the stream ends. Flattening it every so often keeps
 * the delivered text at about its own size. The interval grows with the text
 * (1/64 of it) so the copying stays linear in the answer's length.
 */
const FLATTEN_MIN_APPENDS = 16;

/** The client-facing identity and the text already delivered. */
export class ClientStream {
  id: string | null = null;
  created = 0;
  model = '';
  content = '';
  reasoning = '';
  toolCalls = false;
  /** The delivered text is kept (for a resume); false when resume is off or the answer outgrew it. */
  resumable: boolean;
  #roleSent = false;
  #usage: Usage | null = null;
  /** Appends to `content`/`reasoning` since they were last flattened. */
  #appends = 0;

  constructor(resumable = true) {
    this.resumable = resumable;
  }

  /** Give a chunk the stream's identity, drop a repeated `role`, and remember what it carries. */
  stamp(chunk: ChatCompletionChunk): ChatCompletionChunk {
    if (this.id === null) {
      this.id = chunk.id;
      this.created = chunk.created;
      this.model = chunk.model;
    } else {
      chunk.id = this.id;
      chunk.created = this.created;
      chunk.model = this.model;
    }
    const choice = chunk.choices[0];
    if (choice === undefined) return chunk;
    const delta = choice.delta;
    if (choice.index !== 0) {
      // `n > 1`: no resume can continue several answers at once (and each has its own role).
      if (this.resumable) this.#dropKept();
      return chunk;
    }
    if (delta.role !== undefined) {
      if (this.#roleSent) delete delta.role;
      this.#roleSent = true;
    }
    if (this.resumable) this.#keep(delta);
    if (delta.tool_calls && delta.tool_calls.length > 0) this.toolCalls = true;
    return chunk;
  }

  #dropKept(): void {
    this.resumable = false;
    this.content = '';
    this.reasoning = '';
    this.#appends = 0;
  }

  #keep(delta: Delta): void {
    let appended = false;
    if (typeof delta.content === 'string') {
      this.content += delta.content;
      appended = true;
    }
    if (typeof delta.reasoning_content === 'string') {
      this.reasoning += delta.reasoning_content;
      appended = true;
    }
    const kept = this.content.length + this.reasoning.length;
    if (kept > MAX_RESUMABLE_CHARS) {
      this.#dropKept();
      return;
    }
    if (appended && ++this.#appends >= Math.max(FLATTEN_MIN_APPENDS, kept >> 6)) {
      this.#appends = 0;
      // Reading a character makes V8 flatten the rope in place (the cons
      // cells and the delta strings they held become garbage).
      this.content.charCodeAt(0);
      this.reasoning.charCodeAt(0);
    }
  }

  /**
   * Add one attempt's usage to the total (a resumed answer is paid for
   * twice). One attempt's usage is kept as given, details and all; a resumed
   * one adds every number, nested ones too (`cached_tokens`, `cost`…).
   */
  addUsage(usage: Usage | null): void {
    if (!usage) return;
    if (!this.#usage) {
      this.#usage = { ...usage };
      return;
    }
    sumUsage(this.#usage, usage);
  }

  get usage(): Usage | null {
    return this.#usage;
  }

  /** The `choices: []` chunk that carries usage, for clients that asked for it. */
  usageChunk(): ChatCompletionChunk | null {
    if (!this.#usage || this.id === null) return null;
    return { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [], usage: this.#usage };
  }
}

export type ResumeMode = 'prefill' | 'restart';

/** What the filter made of one chunk of the new attempt. */
export type FilterResult = { kind: 'emit'; chunk: ChatCompletionChunk | null } | { kind: 'diverged'; why: string };

/** Prefill answers that start by repeating this much of the sent text are restarts, not continuations. */
const RESTART_PROBE_CHARS = 16;

/**
 * Fits a resumed attempt's output onto what the client already has.
 *
 * - `prefill`: the endpoint saw the partial answer as an assistant message and
 *   continues it; its output is appended. Some servers ignore the prefill and
 *   start over — an answer that begins by repeating the sent text is then
 *   handled as a restart.
 * - `restart`: the endpoint answers from scratch; the part that repeats what
 *   was sent is dropped, the rest is appended, and the first character that
 *   differs ends the resume (a contradicting splice is never sent).
 *
 * Reasoning is compared only when the partial answer was reasoning alone;
 * once content was sent, new reasoning is dropped.
 */
export class ResumeFilter {
  #mode: ResumeMode;
  readonly #sentContent: string;
  readonly #sentReasoning: string;
  #contentMatched = 0;
  #reasoningMatched = 0;
  /** Prefill output held back until it is clear it does not repeat the sent text. */
  #probe = '';
  #decided: boolean;

  constructor(mode: ResumeMode, sent: { content: string; reasoning: string }) {
    this.#mode = mode;
    this.#sentContent = sent.content;
    this.#sentReasoning = sent.reasoning;
    this.#decided = mode === 'restart' || sent.content.length === 0;
  }

  get mode(): ResumeMode {
    return this.#mode;
  }

  push(chunk: ChatCompletionChunk): FilterResult {
    const delta = chunk.choices[0]?.delta;
    if (!delta) return { kind: 'emit', chunk };
    if (delta.role !== undefined) delete delta.role;
    const reasoning = this.#filterReasoning(delta);
    if (reasoning) return reasoning;
    if (typeof delta.content === 'string' && delta.content !== '') {
      const content = this.#mode === 'prefill' ? this.#prefillContent(delta) : this.#restartContent(delta, delta.content);
      if (content) return content;
    }
    const finishing = (chunk.choices[0]?.finish_reason ?? null) !== null;
    if (finishing) {
      const short = this.#finish(delta);
      if (short) return short;
    }
    return { kind: 'emit', chunk: isEmpty(delta) && !finishing ? null : chunk };
  }

  /** The new attempt finishes: release held text; an answer shorter than what was sent contradicts it. */
  #finish(delta: Delta): FilterResult | null {
    if (!this.#decided) {
      // A continuation short enough to fit in the probe window.
      this.#decided = true;
      const held = this.#probe;
      this.#probe = '';
      if (held !== '') delta.content = held + (typeof delta.content === 'string' ? delta.content : '');
      return null;
    }
    if (this.#mode !== 'restart') return null;
    if (this.#contentMatched < this.#sentContent.length) {
      return { kind: 'diverged', why: 'the new answer is shorter than what was already sent' };
    }
    if (this.#sentContent.length === 0 && this.#reasoningMatched < this.#sentReasoning.length) {
      return { kind: 'diverged', why: 'the new reasoning is shorter than what was already sent' };
    }
    return null;
  }

  #filterReasoning(delta: Delta): FilterResult | null {
    const text = delta.reasoning_content;
    if (typeof text !== 'string' || text === '') return null;
    if (this.#sentContent.length > 0 || this.#mode === 'prefill') {
      delete delta.reasoning_content;
      return null;
    }
    const { matched, rest, diverged } = matchPrefix(this.#sentReasoning, this.#reasoningMatched, text);
    this.#reasoningMatched = matched;
    if (diverged) return { kind: 'diverged', why: 'the new reasoning differs from what was already sent' };
    if (rest === '') delete delta.reasoning_content;
    else delta.reasoning_content = rest;
    return null;
  }

  #prefillContent(delta: Delta): FilterResult | null {
    const text = delta.content as string;
    if (this.#decided) return null;
    this.#probe += text;
    const window = Math.min(RESTART_PROBE_CHARS, this.#sentContent.length);
    const head = this.#sentContent.slice(0, window);
    if (this.#probe.length < window && head.startsWith(this.#probe)) {
      // Still ambiguous: hold it back.
      delete delta.content;
      return null;
    }
    this.#decided = true;
    const held = this.#probe;
    this.#probe = '';
    if (held.startsWith(head)) {
      this.#mode = 'restart';
      return this.#restartContent(delta, held);
    }
    delta.content = held;
    return null;
  }

  #restartContent(delta: Delta, text: string): FilterResult | null {
    const { matched, rest, diverged } = matchPrefix(this.#sentContent, this.#contentMatched, text);
    this.#contentMatched = matched;
    if (diverged) return { kind: 'diverged', why: 'the new answer differs from what was already sent' };
    if (rest === '') delete delta.content;
    else delta.content = rest;
    return null;
  }
}

/** Compare `text` against `sent` from `matched` on; what lies beyond `sent` is new. */
function matchPrefix(sent: string, matched: number, text: string): { matched: number; rest: string; diverged: boolean } {
  if (matched >= sent.length) return { matched, rest: text, diverged: false };
  const overlap = Math.min(text.length, sent.length - matched);
  if (text.slice(0, overlap) !== sent.slice(matched, matched + overlap)) return { matched, rest: '', diverged: true };
  return { matched: matched + overlap, rest: text.slice(overlap), diverged: false };
}

function isEmpty(delta: Delta): boolean {
  for (const key in delta) {
    const value = delta[key];
    if (value !== undefined && value !== null && value !== '') return false;
  }
  return true;
}
