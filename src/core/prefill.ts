/**
 * Prefill: asking an endpoint to continue a partial answer given as a final
 * assistant message (SPEC §3.11). Only an endpoint known to honour it may be
 * asked: a server that ignores the prefill (OpenAI's own API starts a new
 * assistant turn) answers afresh, and appending that answer would splice two
 * answers into one.
 */
import { adapterFor } from './providers/index.js';
import type { ChatRequest, Endpoint } from './types.js';

/**
 * Whether `endpoint` continues a prefilled assistant message: as its profile
 * declares (`prefill: true | false`), else as its type is documented to
 * (`auto`, the default).
 */
export function continuesPrefill(endpoint: Endpoint): boolean {
  const declared = endpoint.prefill;
  return typeof declared === 'boolean' ? declared : adapterFor(endpoint.type).prefill;
}

/**
 * The request that asks an endpoint to continue `partial`: the partial answer
 * as a final assistant message, flagged the ways servers understand (`prefix`
 * for DeepSeek and Mistral, `continue_final_message` with
 * `add_generation_prompt: false` for vLLM and SGLang).
 */
export function withPrefill(body: ChatRequest, partial: string): ChatRequest {
  return {
    ...body,
    messages: [...body.messages, { role: 'assistant', content: partial, prefix: true }],
    continue_final_message: true,
    add_generation_prompt: false,
  };
}
