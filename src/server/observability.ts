/**
 * `/status`, `/metrics` and the dashboard (`/ui`, `/ui/events`): observers
 * that watch engine events, and the GET routes that show what they saw. The server gives these routes the
 * same API-key check as the proxy routes.
 */
import type { EngineObserver } from '../core/observe.js';
import type { HealthTracker } from '../core/health.js';
import type { GroupRegistry } from './registry.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson, type Headers } from './http.js';
import { MetricsObserver, type MetricsOptions } from './metrics.js';
import { StatusObserver, buildStatus, type StatusBody } from './status.js';
import { UsageMeter } from './usage-meter.js';
import { LiveEvents } from './events.js';
import { RequestFeed } from './feed.js';
import { uiAssetRoutes } from './ui-assets.js';
import { priceLookup } from '../logging/usage.js';

export interface Observability {
  observers: EngineObserver[];
  /** The `/status` body as of now. */
  status: () => StatusBody;
  /** The dashboard's files (no key needed: they hold no data). */
  publicRoutes: Observability['routes'];
  /** End the live event streams, so no open dashboard holds a shutdown. */
  close(): void;
  routes: Record<string, (req: IncomingMessage, res: ServerResponse, headers: Headers) => void | Promise<void>>;
}

/**
 * Build the observers and routes for one server. `health` is the engine's
 * tracker (read at request/scrape time); `groups` holds the live groups.
 */
export function createObservability(
  health: HealthTracker,
  groups: Pick<GroupRegistry, 'all' | 'get'>,
  options: MetricsOptions & { liveIntervalMs?: number } = {},
): Observability {
  const startedAt = Date.now();
  const status = new StatusObserver();
  const usage = new UsageMeter(priceLookup((name) => groups.get(name)));
  const metrics = new MetricsObserver(health, () => groups.all(), { ...options, usage });
  const feed = new RequestFeed(usage);
  const statusNow = (): StatusBody => buildStatus(health, groups.all(), status, startedAt, Date.now(), usage);
  const live = new LiveEvents({ feed, status: statusNow, ...(options.liveIntervalMs !== undefined ? { intervalMs: options.liveIntervalMs } : {}) });
  return {
    observers: [status, usage, metrics, feed],
    status: statusNow,
    publicRoutes: uiAssetRoutes(),
    close: () => live.close(),
    routes: {
      '/ui/events': live.handle,
      '/status': (_req, res, headers) => sendJson(res, 200, statusNow(), headers),
      '/metrics': async (_req, res, headers) => {
        const { contentType, body } = await metrics.scrape();
        if (res.headersSent || res.destroyed) return;
        res.writeHead(200, { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
    },
  };
}
