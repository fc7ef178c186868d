/**
 * `GET /status` (SPEC §4): per group and endpoint, the cooldown state from the
 * engine's health tracker plus what recent attempts looked like.
 */
import { endpointKey, type HealthStoreStatus, type HealthTracker } from '../core/health.js';
import type { EngineObserver, RequestContext } from '../core/observe.js';
import { redactSecrets } from '../core/redact.js';
import { routingOf } from '../core/routing.js';
import type { Endpoint, EngineEvent, FailureClass, Group } from '../core/types.js';
import { percentile } from '../logging/stats.js';
import { emptyTotals, type UsageTotals } from '../logging/usage.js';
import { sumTotals, type UsageMeter } from './usage-meter.js';

/** How far back the per-endpoint window reaches. */
export const STATUS_WINDOW_MS = 5 * 60_000;
/** Most attempts (and first-token times) kept per endpoint, whatever their age. */
export const STATUS_WINDOW_MAX = 500;

interface AttemptSample {
  at: number;
  /** Null = success. */
  failure: FailureClass | null;
  ms: number;
}

interface TtftSample {
  at: number;
  ms: number;
}

interface EndpointWindow {
  attempts: AttemptSample[];
  ttfts: TtftSample[];
}

export interface WindowStats {
  successes: number;
  failures: Partial<Record<FailureClass, number>>;
  /** Attempt durations (successes and failures). */
  p50_ms: number | null;
  p95_ms: number | null;
  /** From attempt start to the first token, for attempts that committed. */
  ttft_p50_ms: number | null;
  ttft_p95_ms: number | null;
}

export interface EndpointStatus {
  name: string;
  model: string;
  state: 'ok' | 'cooling' | 'half_open';
  /** When the cooldown ends (cooling) or ended (half_open: the next request probes it). */
  cooling_until: string | null;
  reason: FailureClass | null;
  message: string | null;
  consecutive_failures: number;
  window: WindowStats;
  /** Key-pool lanes: the endpoint they belong to and the key's fingerprint (never the key). */
  pool?: string;
  lane?: string;
  /** Requests running on the lane now (key pools and lanes with limits). */
  in_flight?: number;
  /** Tokens and cost of the requests it answered since the server started. */
  usage: UsageTotals;
}

export interface StatusBody {
  groups: Array<{ name: string; endpoints: EndpointStatus[]; skipped: Array<{ name: string; reason: string }>; usage: UsageTotals }>;
  uptime_s: number;
  /** Whether cooldown state is shared with other instances (`serve --redis`) and how many are live. */
  health_store: HealthStoreStatus;
}

/**
 * Records every attempt's outcome per group and endpoint. The window is the
 * last {@link STATUS_WINDOW_MS} (5 minutes), capped at the
 * {@link STATUS_WINDOW_MAX} most recent attempts per endpoint: `attempt_failed`
 * counts a failure of its class, `done` a success of the answering endpoint
 * (with that attempt's duration), `commit` a first-token time.
 */
export class StatusObserver implements EngineObserver {
  readonly #windows = new Map<string, EndpointWindow>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  onEvent(context: RequestContext, event: EngineEvent): void {
    switch (event.type) {
      case 'attempt_failed':
        this.#push(context.group, event.endpoint, 'attempts', {
          at: this.#now(),
          failure: event.failure.class,
          ms: event.ms,
        });
        return;
      case 'commit':
        this.#push(context.group, event.endpoint, 'ttfts', { at: this.#now(), ms: event.ttftMs });
        return;
      case 'done': {
        const endpoint = event.summary.endpoint;
        if (endpoint === null) return;
        const ms = event.summary.attempts.at(-1)?.ms ?? event.summary.ms;
        this.#push(context.group, endpoint, 'attempts', { at: this.#now(), failure: null, ms });
        return;
      }
      default:
        return;
    }
  }

  #push<K extends keyof EndpointWindow>(
    group: string,
    endpoint: string,
    list: K,
    sample: EndpointWindow[K][number],
  ): void {
    const key = windowKey(group, endpoint);
    let window = this.#windows.get(key);
    if (!window) {
      window = { attempts: [], ttfts: [] };
      this.#windows.set(key, window);
    }
    const samples = window[list] as Array<EndpointWindow[K][number]>;
    samples.push(sample);
    // Amortized trim: drop the oldest in one splice once the list is well past the cap.
    if (samples.length > STATUS_WINDOW_MAX * 1.25) samples.splice(0, samples.length - STATUS_WINDOW_MAX);
  }

  /** Window statistics for one endpoint (empty when it saw no traffic). */
  stats(group: string, endpoint: string): WindowStats {
    const window = this.#windows.get(windowKey(group, endpoint));
    const since = this.#now() - STATUS_WINDOW_MS;
    const attempts = recent(window?.attempts ?? [], since);
    const ttfts = recent(window?.ttfts ?? [], since).map((s) => s.ms);
    const durations = attempts.map((s) => s.ms);
    const failures: Partial<Record<FailureClass, number>> = {};
    let successes = 0;
    for (const sample of attempts) {
      if (sample.failure === null) successes += 1;
      else failures[sample.failure] = (failures[sample.failure] ?? 0) + 1;
    }
    return {
      successes,
      failures,
      p50_ms: percentile(durations, 50),
      p95_ms: percentile(durations, 95),
      ttft_p50_ms: percentile(ttfts, 50),
      ttft_p95_ms: percentile(ttfts, 95),
    };
  }

  /** Forget endpoints no longer configured (groups removed or reloaded without them). */
  retain(groups: readonly Group[]): void {
    const live = new Set<string>();
    for (const g of groups) for (const e of g.endpoints) live.add(windowKey(g.name, e.name));
    for (const key of this.#windows.keys()) if (!live.has(key)) this.#windows.delete(key);
  }
}

const windowKey = (group: string, endpoint: string): string => `${group}\u0000${endpoint}`;

/** The last `STATUS_WINDOW_MAX` samples newer than `since` (samples are in time order). */
function recent<T extends { at: number }>(samples: readonly T[], since: number): T[] {
  let start = Math.max(0, samples.length - STATUS_WINDOW_MAX);
  while (start < samples.length && samples[start]!.at < since) start += 1;
  return samples.slice(start);
}

/** The `/status` body. No keys: endpoints show name and model only, messages are redacted. */
export function buildStatus(
  health: HealthTracker,
  groups: readonly Group[],
  observer: StatusObserver,
  startedAt: number,
  now = Date.now(),
  usage?: UsageMeter,
): StatusBody {
  observer.retain(groups);
  return {
    groups: groups.map((group) => {
      const endpoints = group.endpoints.map((endpoint): EndpointStatus => {
        const snap = health.snapshot(endpoint);
        return {
          name: endpoint.name,
          model: endpoint.model,
          state: snap.state,
          cooling_until: snap.until !== null ? new Date(snap.until).toISOString() : null,
          reason: snap.reason,
          message: snap.message !== null ? redactSecrets(snap.message) : null,
          consecutive_failures: snap.consecutiveFailures,
          window: observer.stats(group.name, endpoint.name),
          ...laneStatus(health, endpoint),
          usage: usage?.endpoint(group.name, endpoint.name) ?? emptyTotals(),
        };
      });
      return {
        name: group.name,
        endpoints,
        skipped: group.skipped.map((s) => ({ name: s.name, reason: s.reason })),
        usage: endpoints.reduce((sum, e) => sumTotals(sum, e.usage), emptyTotals()),
      };
    }),
    uptime_s: Math.round((now - startedAt) / 1000),
    health_store: health.storeStatus(),
  };
}

function laneStatus(health: HealthTracker, endpoint: Endpoint): Pick<EndpointStatus, 'pool' | 'lane' | 'in_flight'> {
  if (endpoint.pool === undefined && endpoint.limits === undefined) return {};
  const inFlight = routingOf(health).limits.inflight(endpointKey(endpoint));
  return endpoint.pool !== undefined ? { pool: endpoint.pool, lane: endpoint.lane ?? '', in_flight: inFlight } : { in_flight: inFlight };
}
