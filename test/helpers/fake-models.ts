/**
 * Fake "models" that answer like real OpenAI-compatible providers do when a
 * request ends with an assistant message (a prefill), including the
 * unhelpful ways:
 *
 * - `continue`: the server continues the assistant message (OpenRouter's
 *   documented "Assistant Prefill"; vLLM/SGLang with `continue_final_message`;
 *   DeepSeek and Mistral with `prefix: true`).
 * - `ignore`: the server starts a new assistant turn and answers afresh. This
 *   is what OpenAI's own Chat Completions API does: a trailing assistant
 *   message is context, not a prefix to continue (see the OpenAI community
 *   thread "Continue an assistant message / prefill" and BREADTH.md).
 * - `reject`: the server refuses the unknown fields or the trailing assistant
 *   message with a 400, as strict OpenAI-compatible servers do.
 */
import { chunk, json, sse, usageChunk, type Behaviour, type ReceivedRequest, type SseItem } from './fake-upstream.js';

export type PrefillBehaviour = 'continue' | 'ignore' | 'reject';

/** Split like a tokenizer does: each piece keeps its leading whitespace. */
export function tokens(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

export function tokenStream(text: string, finish = true): SseItem[] {
  return [chunk({ role: 'assistant', content: '' }), ...tokens(text).map((t) => chunk({ content: t })), ...(finish ? [chunk({}, 'stop'), usageChunk()] : [])];
}

export function prefillOf(req: ReceivedRequest): string | null {
  const messages = req.body.messages as Array<{ role: string; content: unknown }>;
  const last = messages.at(-1);
  return last?.role === 'assistant' && typeof last.content === 'string' ? last.content : null;
}

/**
 * A model whose answer to the conversation is `answer`. With a prefill, it
 * behaves as `prefill` says; `ignore` answers `fresh` (by default the same
 * `answer`, as a deterministic model would).
 */
export function model(answer: string, prefill: PrefillBehaviour, fresh = answer): (n: number, req: ReceivedRequest) => Behaviour {
  return (_n, req) => {
    const partial = prefillOf(req);
    if (partial === null) return sse(tokenStream(answer));
    switch (prefill) {
      case 'continue':
        return sse(tokenStream(answer.startsWith(partial) ? answer.slice(partial.length) : answer));
      case 'ignore':
        return sse(tokenStream(fresh));
      case 'reject':
        return json({ error: { message: 'Unrecognized request arguments supplied: continue_final_message, prefix', type: 'invalid_request_error' } }, 400);
    }
  };
}

/** An upstream that streams the first `words` words of `answer`, then resets the connection. */
export function cutAfter(answer: string, words: number): Behaviour {
  return sse(tokenStream(tokens(answer).slice(0, words).join(''), false), { end: 'reset' });
}
