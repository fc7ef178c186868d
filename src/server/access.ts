/**
 * The door every request passes first: the origin policy applied to HTTP —
 * a 403 for a page or host name that is not allowed, the CORS grant for one
 * that is, and the preflight answer.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { sendError, type Headers } from './http.js';
import { createOriginPolicy, isLoopbackHost, type OriginPolicyOptions } from './origin-policy.js';

export interface Refusal {
  reason: 'origin' | 'host';
  /** The refused header's value, as sent. */
  value: string;
  method: string;
  path: string;
}

export interface AccessOptions extends OriginPolicyOptions {
  /** Told of each refused request, e.g. to say which flag would allow it. */
  onRefused?: (refusal: Refusal) => void;
}

export interface AccessControl {
  /** `Vary: Origin` unless any origin is allowed: the grant depends on it, so caches must keep answers apart. */
  readonly baseHeaders: Headers;
  /** Turn the Host check on or off by the address `server` ends up bound to. */
  watch(server: Server): void;
  /**
   * Judge `req` before anything else happens. Adds the grant to `headers` and
   * returns true, or answers 403 in OpenAI shape and returns false. `GET /health`
   * is always admitted (it tells nothing), but granted only to allowed pages.
   */
  admit(req: IncomingMessage, res: ServerResponse, headers: Headers, method: string, path: string): boolean;
}

export function createAccessControl(options: AccessOptions): AccessControl {
  const policy = createOriginPolicy(options);
  // Bound to a loopback address, every request comes from this machine, so a
  // Host naming anything else is a browser fooled by DNS rebinding. Bound to
  // another address, names are the user's business and the keys the guard.
  let checkHost = true;
  return {
    baseHeaders: policy.anyOrigin ? {} : { vary: 'Origin' },
    watch(server) {
      server.on('listening', () => {
        const address = server.address();
        checkHost = address === null || typeof address === 'string' || isLoopbackHost(address.address);
      });
    },
    admit(req, res, headers, method, path) {
      const verdict = policy.check(req.headers.origin, req.headers.host, checkHost);
      if (verdict.ok) {
        if (verdict.allowOrigin !== null) headers['access-control-allow-origin'] = verdict.allowOrigin;
        return true;
      }
      if (method === 'GET' && path === '/health') return true;
      const value = String((verdict.reason === 'origin' ? req.headers.origin : req.headers.host) ?? '');
      options.onRefused?.({ reason: verdict.reason, value, method, path });
      const code = verdict.reason === 'origin' ? 'origin_not_allowed' : 'host_not_allowed';
      sendError(res, 403, verdict.message, 'invalid_request_error', code, null, headers);
      return false;
    },
  };
}

/** Answer a preflight that `admit` let through. */
export function sendPreflight(req: IncomingMessage, res: ServerResponse, headers: Headers): void {
  const requested = req.headers['access-control-request-headers'];
  // `*` does not cover Authorization, so it is always named.
  const allowed = ['authorization', 'content-type', 'x-api-key'];
  if (typeof requested === 'string') {
    for (const h of requested.split(',')) {
      const name = h.trim().toLowerCase();
      if (name && !allowed.includes(name)) allowed.push(name);
    }
  }
  const answer: Headers = {
    ...headers,
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    'access-control-allow-headers': allowed.join(', '),
    'access-control-max-age': '86400',
    'content-length': '0',
  };
  // Chrome asks before a public page may reach a private address; only an allowed page is told yes.
  if (
    req.headers['access-control-request-private-network'] === 'true' &&
    headers['access-control-allow-origin'] !== undefined
  ) {
    answer['access-control-allow-private-network'] = 'true';
  }
  res.writeHead(204, answer);
  res.end();
}
