/**
 * Where an endpoint's requests go, with which headers, and on which kind of
 * connection pool: shared by the chat and the embeddings engines. A chat
 * target is computed once per endpoint object (a reload makes new ones), not
 * once per request.
 */
import { createRequire } from 'node:module';
import type { Dispatcher, Agent as UndiciAgent } from 'undici';
import { adapterFor } from './providers/index.js';
import type { Endpoint } from './types.js';

/**
 * undici's Agent and its `request()` without the rest of undici: its index
 * also loads fetch, WebSocket, the caches and the mocks, ~9 MB of RSS for the
 * life of `serve` that a proxy never uses (idle RSS, bench `hold512`, #18).
 * Both files have been there since undici 6; every engine test goes through them.
 */
const load = createRequire(import.meta.url);
const Agent = load('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
type Agent = UndiciAgent;
const apiRequest = load('undici/lib/api/api-request.js') as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/**
 * `dispatcher.request(options)` for any dispatcher: undici's index is what
 * puts `request` on the Dispatcher prototype, and it is not loaded here.
 */
export function requestOn(dispatcher: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
  return apiRequest.call(dispatcher, options);
}

/**
 * The engines' own upstream pool. Their watchdogs bound every phase, so
 * undici's 300 s defaults would only kill long reasoning calls on their own
 * schedule. Idle sockets are kept for an upstream's `Keep-Alive: timeout=`
 * hint less 2 s (undici's threshold), else 4 s: under uvicorn's 5 s, so a
 * stale socket (and its resend, socket-reuse.ts) stays rare.
 */
export function createUpstreamAgent(): Agent {
  return new Agent({ headersTimeout: 0, bodyTimeout: 0, connect: { timeout: 30_000 }, keepAliveTimeout: 4_000 });
}

/** The request headers for `endpoint`: ours, its type's, its own, then its key. */
export function upstreamHeaders(endpoint: Endpoint, accept: string): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept,
    'user-agent': 'failproxy',
    ...adapterFor(endpoint.type).headers(endpoint),
    ...endpoint.headers,
  };
  if (endpoint.apikey !== '') headers.authorization = `Bearer ${endpoint.apikey}`;
  return headers;
}

export interface Target {
  origin: string;
  path: string;
  headers: Record<string, string>;
}

const targets = new WeakMap<Endpoint, Target>();

export function targetFor(endpoint: Endpoint): Target {
  let target = targets.get(endpoint);
  if (!target) {
    const url = new URL(`${endpoint.baseurl}/chat/completions`);
    const headers = upstreamHeaders(endpoint, 'application/json, text/event-stream');
    target = { origin: url.origin, path: url.pathname + url.search, headers };
    targets.set(endpoint, target);
  }
  return target;
}
