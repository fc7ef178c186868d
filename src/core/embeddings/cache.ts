/**
 * The optional in-memory cache of vectors (group option `cache`), for local
 * RAG loops that embed the same chunks again and again. Keyed by family,
 * dimensions and a hash of the input, so a vector is only ever reused in the
 * embedding space it came from; bounded in bytes, least recently used first out.
 */
import { createHash } from 'node:crypto';
import type { EmbeddingInput } from './types.js';

/** Per entry beyond the vector's 8 bytes a number: the key string, the Map slot, the array header. */
const ENTRY_OVERHEAD = 160;

export class EmbeddingsCache {
  readonly maxBytes: number;
  readonly #entries = new Map<string, number[]>();
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  static key(family: string, dimensions: number, input: EmbeddingInput): string {
    // Text and token ids never collide: the kind is part of what is hashed.
    const hash = createHash('sha256')
      .update(typeof input === 'string' ? `t:${input}` : `i:${input.join(',')}`)
      .digest('base64url');
    return `${family}\u0000${dimensions}\u0000${hash}`;
  }

  get(key: string): number[] | undefined {
    const vector = this.#entries.get(key);
    if (vector === undefined) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    // Re-inserting moves it to the young end of the Map's order.
    this.#entries.delete(key);
    this.#entries.set(key, vector);
    return vector;
  }

  set(key: string, vector: number[]): void {
    const cost = vector.length * 8 + ENTRY_OVERHEAD;
    if (cost > this.maxBytes) return;
    const old = this.#entries.get(key);
    if (old !== undefined) {
      this.#entries.delete(key);
      this.#bytes -= old.length * 8 + ENTRY_OVERHEAD;
    }
    this.#entries.set(key, vector);
    this.#bytes += cost;
    for (const [oldest, value] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= value.length * 8 + ENTRY_OVERHEAD;
    }
  }
}
