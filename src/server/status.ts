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

/**
 * The last {@link STATUS_WINDOW_MAX} samples of one kind, oldest first, in
 * typed arrays: a sample object per attempt would live for hundreds of
 * requests, be copied by two scavenges into the old generation and cost the
 * major collections a proxy's CPU went to (bench ns-c16, #18).
 */
class SampleRing {
  readonly at = new Float64Array(STATUS_WINDOW_MAX);
  readonly ms = new Float64Array(STATUS_WINDOW_MAX);
  /** Index into {@link CLASSES} of the failure; -1 for a success. */
  readonly failure = new Int16Array(STATUS_WINDOW_MAX);
  #start = 0;
  size = 0;

  push(at: number, ms: number, failure: number): void {
    let i: number;
    if (this.size < STATUS_WINDOW_MAX) i = (this.#start + this.size++) % STATUS_WINDOW_MAX;
    else {
      i = this.#start;
      this.#start = (this.#start + 1) % STATUS_WINDOW_MAX;
    }
    this.at[i] = at;
    this.ms[i] = ms;
    this.failure[i] = failure;
  }

  /** Array indices of the samples newer than `since`, oldest first (samples are in time order). */
  *since(since: number): Generator<number> {
    let n = 0;
    while (n < this.size && this.at[(this.#start + n) % STATUS_WINDOW_MAX]! < since) n += 1;
    for (; n < this.size; n++) yield (this.#start + n) % STATUS_WINDOW_MAX;
  }
}

/** Failure classes seen so far, so a sample stores a small number instead of the string. */
const CLASSES: FailureClass[] = [];

function classCode(failure: FailureClass): number {
  const i = CLASSES.indexOf(failure);
  return i !== -1 ? i : CLASSES.push(failure) - 1;
}

interface EndpointWindow {
  attempts: SampleRing;
  ttfts: SampleRing;
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
        this.#window(context.group, event.endpoint).attempts.push(this.#now(), event.ms, classCode(event.failure.class));
        return;
      case 'commit':
        this.#window(context.group, event.endpoint).ttfts.push(this.#now(), event.ttftMs, -1);
        return;
      case 'done': {
        const endpoint = event.summary.endpoint;
        if (endpoint === null) return;
        const ms = event.summary.attempts.at(-1)?.ms ?? event.summary.ms;
        this.#window(context.group, endpoint).attempts.push(this.#now(), ms, -1);
        return;
      }
      default:
        return;
    }
  }

  #window(group: string, endpoint: string): EndpointWindow {
    const key = windowKey(group, endpoint);
    let window = this.#windows.get(key);
    if (!window) {
      window = { attempts: new SampleRing(), ttfts: new SampleRing() };
      this.#windows.set(key, window);
    }
    return window;
  }

  /** Window statistics for one endpoint (empty when it saw no traffic). */
  stats(group: string, endpoint: string): WindowStats {
    const window = this.#windows.get(windowKey(group, endpoint));
    const since = this.#now() - STATUS_WINDOW_MS;
    const durations: number[] = [];
    const ttfts: number[] = [];
    const failures: Partial<Record<FailureClass, number>> = {};
    let successes = 0;
    if (window) {
      const { attempts } = window;
      for (const i of attempts.since(since)) {
        durations.push(attempts.ms[i]!);
        const code = attempts.failure[i]!;
        if (code === -1) successes += 1;
        else failures[CLASSES[code]!] = (failures[CLASSES[code]!] ?? 0) + 1;
      }
      for (const i of window.ttfts.since(since)) ttfts.push(window.ttfts.ms[i]!);
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
