/**
 * `/v1/completions` answered from chat upstreams (WIRE §1.6): the prompt
 * became one user message; the answer's content becomes `text`. Reasoning is
 * never spliced into `text`.
 */
import type { ChatCompletion, ChatCompletionChunk } from '../core/types.js';

export function toTextCompletion(completion: ChatCompletion): Record<string, unknown> {
  const choice = completion.choices[0];
  const out: Record<string, unknown> = {
    id: completion.id,
    object: 'text_completion',
    created: completion.created,
    model: completion.model,
    choices: [{ text: choice?.message.content ?? '', index: 0, logprobs: null, finish_reason: choice?.finish_reason ?? 'stop' }],
  };
  if (completion.usage) out.usage = completion.usage;
  return out;
}

/** Null for chunks that carry nothing a text completion can show (role-only, reasoning, tool calls). */
export function toTextCompletionChunk(chunk: ChatCompletionChunk): Record<string, unknown> | null {
  const base = { id: chunk.id, object: 'text_completion', created: chunk.created, model: chunk.model };
  const choice = chunk.choices[0];
  if (!choice) return chunk.usage ? { ...base, choices: [], usage: chunk.usage } : null;
  const text = typeof choice.delta.content === 'string' ? choice.delta.content : '';
  if (text === '' && choice.finish_reason === null) return null;
  return { ...base, choices: [{ text, index: 0, logprobs: null, finish_reason: choice.finish_reason }] };
}
