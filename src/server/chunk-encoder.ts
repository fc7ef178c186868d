/**
 * Chat chunks -> SSE events for one streamed response. The normalized chunk
 * (`id`, `object`, `created`, `model` and one choice of `index`, `delta`,
 * `logprobs`, `finish_reason` — what the engine sends — then any top-level
 * fields the upstream added, such as `system_fingerprint`) is written by hand
 * around `JSON.stringify(delta)`: about five times cheaper than stringifying
 * the whole chunk, and a stream is mostly that. Anything else (the usage
 * chunk, several choices, keys in another order) goes through `JSON.stringify`.
 */
import type { ChatCompletionChunk, ChunkChoice } from '../core/types.js';

const CHUNK_KEYS = ['id', 'object', 'created', 'model', 'choices'];
const CHOICE_KEYS = ['index', 'delta', 'logprobs', 'finish_reason'];
const NOT_CACHED = Symbol('not cached');

export class ChunkEncoder {
  /** The event text up to the choice's index, for the identity it was made for. */
  #prefix = '';
  #id: string | undefined;
  #model: string | undefined;
  #created = Number.NaN;

  /**
   * The text of the top-level fields after `choices`, by position: most repeat
   * on every chunk of a stream (`system_fingerprint`, `service_tier`), so each
   * is written once and reused while its key and value stay the same.
   */
  readonly #extraKeys: string[] = [];
  readonly #extraValues: unknown[] = [];
  readonly #extraText: string[] = [];

  #extra(position: number, key: string, value: unknown): string {
    if (this.#extraKeys[position] === key && this.#extraValues[position] === value) return this.#extraText[position]!;
    const json = typeof value === 'string' ? quote(value) : JSON.stringify(value);
    // Keys JSON.stringify leaves out (undefined, functions) are left out here too.
    const text = json === undefined ? '' : `,${quote(key)}:${json}`;
    // Objects are compared by identity only: a mutated one must not reuse its old text.
    const cacheable = value === null || typeof value !== 'object';
    this.#extraKeys[position] = key;
    this.#extraValues[position] = cacheable ? value : NOT_CACHED;
    this.#extraText[position] = text;
    return text;
  }

  /** One `data: …\n\n` event. */
  encode(chunk: ChatCompletionChunk): string {
    const { choices } = chunk;
    const choice = choices[0];
    if (
      choice === undefined ||
      choices.length !== 1 ||
      chunk.object !== 'chat.completion.chunk' ||
      typeof chunk.id !== 'string' ||
      typeof chunk.model !== 'string' ||
      !Number.isFinite(chunk.created) ||
      !Number.isInteger(choice.index) ||
      choice.delta === undefined ||
      choice.logprobs === undefined ||
      choice.finish_reason === undefined ||
      !hasChoiceKeys(choice)
    ) {
      return `data: ${JSON.stringify(chunk)}\n\n`;
    }
    // for…in walks keys in JSON.stringify's order without making an array of them.
    let seen = 0;
    let tail = '';
    for (const key in chunk) {
      if (seen < CHUNK_KEYS.length) {
        if (key !== CHUNK_KEYS[seen]) return `data: ${JSON.stringify(chunk)}\n\n`;
        seen++;
        continue;
      }
      tail += this.#extra(seen - CHUNK_KEYS.length, key, chunk[key]);
      seen++;
    }
    if (chunk.id !== this.#id || chunk.model !== this.#model || chunk.created !== this.#created) {
      this.#id = chunk.id;
      this.#model = chunk.model;
      this.#created = chunk.created;
      this.#prefix = `data: {"id":${JSON.stringify(chunk.id)},"object":"chat.completion.chunk","created":${chunk.created},"model":${JSON.stringify(chunk.model)},"choices":[{"index":`;
    }
    const logprobs = choice.logprobs === null ? 'null' : JSON.stringify(choice.logprobs);
    const finish = choice.finish_reason === null ? 'null' : JSON.stringify(choice.finish_reason);
    return `${this.#prefix}${choice.index},"delta":${JSON.stringify(choice.delta)},"logprobs":${logprobs},"finish_reason":${finish}}]${tail}}\n\n`;
  }
}

/** Printable ASCII without `"` and `\`: JSON writes it as is. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * `JSON.stringify` of a string. Short plain strings (`system_fingerprint`,
 * `service_tier`, OpenAI's per-chunk `obfuscation`) are the common case, and
 * a call into JSON.stringify costs more than the test.
 */
function quote(s: string): string {
  return s.length <= 64 && PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

/** Exactly the four keys of a normalized choice, in that order. */
function hasChoiceKeys(choice: ChunkChoice): boolean {
  let seen = 0;
  for (const key in choice) {
    if (key !== CHOICE_KEYS[seen]) return false;
    seen++;
  }
  return seen === CHOICE_KEYS.length;
}
