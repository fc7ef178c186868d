/**
 * `/status` and `/metrics` (SPEC §4): observers that watch engine events, and
 * the GET routes that show what they saw. The server gives these routes the
 * same API-key check as the proxy routes.
 */
import type { EngineObserver } from '../core/observe.js';
import type { HealthTracker } from '../core/health.js';
import type { Group } from '../core/types.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson, type Headers } from './http.js';
import { MetricsObserver, type MetricsOptions } from './metrics.js';
import { StatusObserver, buildStatus, type StatusBody } from './status.js';
import { UsageMeter } from './usage-meter.js';
import { priceLookup } from '../logging/usage.js';

export interface Observability {
  observers: EngineObserver[];
  /** The `/status` body as of now. */
  status: () => StatusBody;
  routes: Record<string, (req: IncomingMessage, res: ServerResponse, headers: Headers) => void | Promise<void>>;
}

/**
 * Build the observers and routes for one server. `health` is the engine's
 * tracker (read at request/scrape time); `groups` returns the live groups.
 */
export function createObservability(
  health: HealthTracker,
  groups: () => Group[],
  options: MetricsOptions = {},
): Observability {
  const startedAt = Date.now();
  const status = new StatusObserver();
  const usage = new UsageMeter(priceLookup(groups));
  const metrics = new MetricsObserver(health, groups, { ...options, usage });
  return {
    observers: [status, usage, metrics],
    status: () => buildStatus(health, groups(), status, startedAt, Date.now(), usage),
    routes: {
      '/status': (_req, res, headers) => sendJson(res, 200, buildStatus(health, groups(), status, startedAt, Date.now(), usage), headers),
      '/metrics': async (_req, res, headers) => {
        const { contentType, body } = await metrics.scrape();
        if (res.headersSent || res.destroyed) return;
        res.writeHead(200, { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
    },
  };
}
