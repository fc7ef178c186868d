/**
 * Chat chunks -> SSE events for one streamed response. The normalized chunk
 * (`id`, `object`, `created`, `model` and one choice of `index`, `delta`,
 * `logprobs`, `finish_reason` — what the engine sends) is written by hand
 * around `JSON.stringify(delta)`: about five times cheaper than stringifying
 * the whole chunk, and a stream is mostly that. Anything else (the usage
 * chunk, a chunk with other keys) goes through `JSON.stringify`.
 */
import type { ChatCompletionChunk } from '../core/types.js';

export class ChunkEncoder {
  /** The event text up to the choice's index, for the identity it was made for. */
  #prefix = '';
  #id: string | undefined;
  #model: string | undefined;
  #created = Number.NaN;

  /** One `data: …\n\n` event. */
  encode(chunk: ChatCompletionChunk): string {
    const { choices } = chunk;
    const choice = choices[0];
    if (
      choice === undefined ||
      choices.length !== 1 ||
      Object.keys(chunk).length !== 5 ||
      chunk.object !== 'chat.completion.chunk' ||
      typeof chunk.id !== 'string' ||
      typeof chunk.model !== 'string' ||
      !Number.isFinite(chunk.created) ||
      Object.keys(choice).length !== 4 ||
      !Number.isInteger(choice.index) ||
      choice.delta === undefined ||
      choice.logprobs === undefined ||
      choice.finish_reason === undefined
    ) {
      return `data: ${JSON.stringify(chunk)}\n\n`;
    }
    if (chunk.id !== this.#id || chunk.model !== this.#model || chunk.created !== this.#created) {
      this.#id = chunk.id;
      this.#model = chunk.model;
      this.#created = chunk.created;
      this.#prefix = `data: {"id":${JSON.stringify(chunk.id)},"object":"chat.completion.chunk","created":${chunk.created},"model":${JSON.stringify(chunk.model)},"choices":[{"index":`;
    }
    const logprobs = choice.logprobs === null ? 'null' : JSON.stringify(choice.logprobs);
    const finish = choice.finish_reason === null ? 'null' : JSON.stringify(choice.finish_reason);
    return `${this.#prefix}${choice.index},"delta":${JSON.stringify(choice.delta)},"logprobs":${logprobs},"finish_reason":${finish}}]}\n\n`;
  }
}
