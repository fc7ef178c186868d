/**
 * What a streaming client has received so far (SPEC §3.11): one `id`, one
 * `role`, usage summed over resumed attempts, and the delivered text a resume
 * must reproduce (resume-filter.ts fits a later attempt's output onto it).
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
