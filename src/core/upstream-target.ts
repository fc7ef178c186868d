/**
 * Where an endpoint's requests go, with which headers, and on which kind of
 * connection pool: shared by the chat and the embeddings engines. A chat
 * target is computed once per endpoint object (a reload makes new ones), not
 * once per request.
 */
import { Agent } from 'undici';
import { adapterFor } from './providers/index.js';
import type { Endpoint } from './types.js';

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
