/**
 * Recent histories for `previous_response_id`, per `serve` process: bounded
 * by count, age and bytes, least recently used out first. An id that is not
 * (or no longer) here is an error for the client, never a shortened history.
 */
import type { ChatMessage } from '../../core/types.js';

export interface ResponseStoreLimits {
  maxEntries: number;
  ttlMs: number;
  maxBytes: number;
}

export const DEFAULT_STORE_LIMITS: ResponseStoreLimits = {
  maxEntries: 1000,
  ttlMs: 60 * 60 * 1000,
  maxBytes: 64 * 1024 * 1024,
};

interface Entry {
  history: ChatMessage[];
  bytes: number;
  expires: number;
}

export class ResponseStore {
  readonly #entries = new Map<string, Entry>();
  readonly #limits: ResponseStoreLimits;
  #bytes = 0;

  constructor(
    limits: Partial<ResponseStoreLimits> = {},
    readonly now: () => number = Date.now,
  ) {
    this.#limits = { ...DEFAULT_STORE_LIMITS, ...limits };
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(id: string): ChatMessage[] | undefined {
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    this.#entries.delete(id);
    if (entry.expires <= this.now()) {
      this.#bytes -= entry.bytes;
      return undefined;
    }
    this.#entries.set(id, entry);
    return entry.history;
  }

  set(id: string, history: ChatMessage[]): void {
    const bytes = Buffer.byteLength(JSON.stringify(history));
    if (bytes > this.#limits.maxBytes) return;
    this.delete(id);
    this.#entries.set(id, { history, bytes, expires: this.now() + this.#limits.ttlMs });
    this.#bytes += bytes;
    for (const [key, entry] of this.#entries) {
      const over = this.#entries.size > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes;
      if (!over && entry.expires > this.now()) break;
      this.delete(key);
    }
  }

  delete(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    this.#bytes -= entry.bytes;
  }
}
