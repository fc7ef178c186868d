/**
 * Building one upstream request from the client's (SPEC §3.1, §3.5), and
 * judging a complete non-streamed upstream body.
 */
import { parseAnswerBody } from './classify.js';
import { applyReasoningReplay } from './replay.js';
import { completionHasOutput, completionRefused, normalizeCompletion, refusalFailure, type NormalizeOptions } from './openai/normalize.js';
import { dropParams } from './shims.js';
import type { ChatCompletion, ChatRequest, Endpoint, Failure, JsonObject } from './types.js';

/**
 * The upstream body: the client's request with the endpoint's model, its
 * overriding fields and `params`, and the stream mode this endpoint is
 * called in. A streamed upstream is always asked for usage (so logs and
 * aggregated answers have it); clients only see it when they asked.
 */
export function buildUpstreamBody(request: ChatRequest, endpoint: Endpoint, upstreamStream: boolean): string {
  const body: JsonObject = { ...request, model: endpoint.model };
  if (endpoint.temperature !== undefined) body.temperature = endpoint.temperature;
  if (endpoint.max_tokens !== undefined) body.max_tokens = endpoint.max_tokens;
  for (const key in endpoint.params) body[key] = endpoint.params[key];
  applyReasoningReplay(body, request, endpoint);
  dropParams(body, endpoint);
  body.stream = upstreamStream;
  if (upstreamStream) {
    const clientOptions = request.stream_options;
    body.stream_options =
      clientOptions && typeof clientOptions === 'object' ? { ...clientOptions, include_usage: true } : { include_usage: true };
  } else {
    // vLLM rejects stream_options without stream:true.
    delete body.stream_options;
  }
  return JSON.stringify(body);
}

export type BodyVerdict = { completion: ChatCompletion } | { failure: Failure };

/** A 2xx body that is not an event stream: a usable completion, or why not. */
export function judgeCompletionBody(
  text: string,
  contentType: string,
  options: NormalizeOptions,
  acceptContentFilter = false,
): BodyVerdict {
  const parsed = parseAnswerBody(text, contentType);
  if ('failure' in parsed) return parsed;
  const completion = normalizeCompletion(parsed.payload, options);
  if (!completion) return invalid('response has no choices[0].message');
  if (!completionHasOutput(completion)) {
    // A refusal is the provider's deliberate answer: failed over (kept for the client) or taken as is.
    if (completionRefused(completion)) return acceptContentFilter ? { completion } : { failure: refusalFailure(completion) };
    if (completion.choices[0]?.finish_reason === 'content_filter') {
      return acceptContentFilter
        ? { completion }
        : { failure: { class: 'content_filter', message: 'the provider stopped the answer with finish_reason "content_filter"' } };
    }
    return invalid('empty completion: no content, tool calls, reasoning or refusal');
  }
  return { completion };
}

function invalid(message: string): { failure: Failure } {
  return { failure: { class: 'invalid_response', message } };
}
