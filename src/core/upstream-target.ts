/**
 * Where an endpoint's chat requests go, and with which headers: computed once
 * per endpoint object (a reload makes new ones), not once per request.
 */
import { adapterFor } from './providers/index.js';
import type { Endpoint } from './types.js';

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
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'user-agent': 'failproxy',
      ...adapterFor(endpoint.type).headers(endpoint),
      ...endpoint.headers,
    };
    if (endpoint.apikey !== '') headers.authorization = `Bearer ${endpoint.apikey}`;
    target = { origin: url.origin, path: url.pathname + url.search, headers };
    targets.set(endpoint, target);
  }
  return target;
}
