/**
 * Parameter shims: `drop` removes request parameters an upstream rejects, and
 * a 400 whose message names an unsupported parameter of the request is
 * retried once on the same endpoint without it. What was learned is kept on
 * the endpoint (and its key pool's siblings) for later requests.
 */
import type { Candidate, RequestState } from './request-state.js';
import type { ChatRequest, Endpoint, Failure } from './types.js';

/** Never dropped: without them there is no request. */
const ESSENTIAL = new Set(['model', 'messages', 'stream', 'stream_options', 'prompt']);

/** How upstreams say a parameter is not theirs (OpenAI, Azure, vLLM, pydantic and serde messages). */
const UNSUPPORTED =
  /unsupported|not supported|does not support|unrecognized|unrecognised|unknown (?:parameter|field|argument|variant|name)|extra (?:inputs|fields)|not permitted|not allowed|additional properties/i;

/** Remove the parameters `endpoint.drop` names from an upstream body (in place). */
export function dropParams(body: Record<string, unknown>, endpoint: Endpoint): void {
  if (endpoint.drop === undefined) return;
  for (const key of endpoint.drop) if (!ESSENTIAL.has(key)) delete body[key];
}

/**
 * The parameter of `request` (as `endpoint` sends it) that a 400 `message`
 * says is unsupported, or null. Only parameters the request really carries
 * can be named, so a message that merely mentions a word never drops anything.
 */
export function unsupportedParameter(message: string, request: ChatRequest, endpoint: Endpoint): string | null {
  if (!UNSUPPORTED.test(message)) return null;
  const sent = new Set([...Object.keys(request), ...Object.keys(endpoint.params)]);
  if (endpoint.temperature !== undefined) sent.add('temperature');
  if (endpoint.max_tokens !== undefined) sent.add('max_tokens');
  let best: { key: string; at: number } | null = null;
  for (const key of sent) {
    if (ESSENTIAL.has(key) || endpoint.drop?.includes(key)) continue;
    const at = message.search(new RegExp(`(?<![\\w.-])${key.replace(/[^\w]/g, '\\$&')}(?![\\w-])`));
    if (at !== -1 && (best === null || at < best.at)) best = { key, at };
  }
  return best?.key ?? null;
}

/**
 * After a bad request on `candidate`: the same endpoint once more without the
 * parameter the upstream named, remembered for the endpoint and its pool; or
 * null. The failure's message says so, for the logs.
 */
export function retryWithoutParameter(state: RequestState, candidate: Candidate, failure: Failure): { retry: Candidate; failure: Failure } | null {
  if (failure.class !== 'bad_request' || candidate.shimmed === true) return null;
  const param = unsupportedParameter(failure.message, state.request.body, candidate.endpoint);
  if (param === null) return null;
  for (const endpoint of state.group.endpoints) {
    const same = endpoint === candidate.endpoint || (endpoint.pool !== undefined && endpoint.pool === candidate.endpoint.pool);
    if (same) endpoint.drop = [...(endpoint.drop ?? []), param];
  }
  return {
    retry: { ...candidate, shimmed: true, notBefore: 0 },
    failure: { ...failure, message: `${failure.message} (retrying without "${param}"; dropped for this endpoint from now on)` },
  };
}
