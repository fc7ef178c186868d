/**
 * `GET /metrics` (SPEC §4): Prometheus counters, histograms and gauges fed by
 * engine events, on a registry of our own (never prom-client's global one, so
 * two servers in one process — or the tests — never share counts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { endpointKey, type HealthTracker } from '../core/health.js';
import type { EngineObserver, RequestContext } from '../core/observe.js';
import { routingOf } from '../core/routing.js';
import type { EngineEvent, Group, RequestSummary } from '../core/types.js';
import type { UsageMeter } from './usage-meter.js';

export type RequestOutcome = 'ok' | 'failed' | 'interrupted' | 'cancelled';

/** Seconds; model calls take from a few hundred ms to minutes. */
const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];
const TTFT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60];

interface HistogramChild {
  observe(value: number): void;
}

/**
 * Counts kept as plain numbers on the hot path and handed to prom-client when
 * scraped: its `inc` hashes and validates the label set on every call, even
 * through a child from `labels()`.
 */
class Tally<L extends string> {
  readonly #counts = new Map<string, { labels: Partial<Record<L, string>>; value: number }>();

  add(key: string, labels: () => Partial<Record<L, string>>, value = 1): void {
    const count = this.#counts.get(key);
    if (count !== undefined) count.value += value;
    else this.#counts.set(key, { labels: labels(), value });
  }

  /** Moves what was counted since the last scrape into `counter`. */
  flushInto(counter: Counter<L>): void {
    for (const count of this.#counts.values()) {
      if (count.value === 0) continue;
      counter.inc(count.labels, count.value);
      count.value = 0;
    }
  }
}

export interface MetricsOptions {
  /** Add prom-client's process metrics (CPU, memory, event loop lag…). Default true. */
  defaultMetrics?: boolean;
  /** Prices each answered request for the token and cost counters; without it they stay empty. */
  usage?: UsageMeter;
}

/**
 * Watches engine events on the hot path, so it stays cheap: counts are plain
 * numbers until scraped, histogram children are cached per label set, `chunk`
 * events return at once, and per-endpoint cooling state is read from the
 * health tracker only when scraped.
 */
export class MetricsObserver implements EngineObserver {
  readonly registry = new Registry();
  readonly #requests: Counter<'group' | 'endpoint' | 'outcome'>;
  readonly #attempts: Counter<'group' | 'endpoint' | 'result'>;
  readonly #duration: Histogram<'group'>;
  readonly #ttft: Histogram<'group'>;
  readonly #tokens: Counter<'group' | 'endpoint' | 'kind'>;
  readonly #cost: Counter<'group' | 'endpoint'>;
  readonly #usage: UsageMeter | undefined;
  readonly #requestCounts = new Tally<'group' | 'endpoint' | 'outcome'>();
  readonly #attemptCounts = new Tally<'group' | 'endpoint' | 'result'>();
  readonly #tokenCounts = new Tally<'group' | 'endpoint' | 'kind'>();
  readonly #costCounts = new Tally<'group' | 'endpoint'>();
  readonly #histogramChildren = new Map<string, HistogramChild>();
  /** Requests that started an attempt and have not ended yet. */
  readonly #open = new Set<string>();

  constructor(health: HealthTracker, groups: () => readonly Group[], options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.#requests = new Counter({
      name: 'failproxy_requests_total',
      help: 'Proxied requests by group, answering endpoint ("" when none) and outcome.',
      labelNames: ['group', 'endpoint', 'outcome'],
      registers,
      collect: () => this.#requestCounts.flushInto(this.#requests),
    });
    this.#attempts = new Counter({
      name: 'failproxy_attempts_total',
      help: 'Upstream attempts by group, endpoint and result (ok or the failure class).',
      labelNames: ['group', 'endpoint', 'result'],
      registers,
      collect: () => this.#attemptCounts.flushInto(this.#attempts),
    });
    this.#duration = new Histogram({
      name: 'failproxy_request_duration_seconds',
      help: 'Whole request duration, failover included (cancelled requests excluded).',
      labelNames: ['group'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#ttft = new Histogram({
      name: 'failproxy_ttft_seconds',
      help: 'Time from request start to the first token of answered requests, failover included.',
      labelNames: ['group'],
      buckets: TTFT_BUCKETS,
      registers,
    });
    const open = this.#open;
    new Gauge({
      name: 'failproxy_in_flight_requests',
      help: 'Requests being served right now.',
      registers,
      collect() {
        this.set(open.size);
      },
    });
    this.#tokens = new Counter({
      name: 'failproxy_tokens_total',
      help: 'Tokens of answered requests by group, answering endpoint and kind (prompt, completion, cached, reasoning; cached and reasoning are inside prompt and completion).',
      labelNames: ['group', 'endpoint', 'kind'],
      registers,
      collect: () => this.#tokenCounts.flushInto(this.#tokens),
    });
    this.#cost = new Counter({
      name: 'failproxy_cost_usd_total',
      help: "Cost in USD of answered requests: the upstream's usage.cost, else the endpoint's price per million tokens.",
      labelNames: ['group', 'endpoint'],
      registers,
      collect: () => this.#costCounts.flushInto(this.#cost),
    });
    this.#usage = options.usage;
    new Gauge({
      name: 'failproxy_endpoint_cooling',
      help: '1 while an endpoint is cooling down (skipped until its cooldown ends), else 0.',
      labelNames: ['group', 'endpoint'],
      registers,
      collect() {
        // Rebuilt on every scrape so removed groups and endpoints disappear.
        this.reset();
        for (const group of groups()) {
          for (const endpoint of group.endpoints) {
            this.set(
              { group: group.name, endpoint: endpoint.name },
              health.snapshot(endpoint).state === 'cooling' ? 1 : 0,
            );
          }
        }
      },
    });
    new Gauge({
      name: 'failproxy_lane_in_flight',
      help: 'Requests running on a key-pool lane (or a lane with limits), by the key fingerprint, never the key.',
      labelNames: ['group', 'endpoint', 'pool', 'lane'],
      registers,
      collect() {
        this.reset();
        const limits = routingOf(health).limits;
        for (const group of groups()) {
          for (const endpoint of group.endpoints) {
            if (endpoint.pool === undefined && endpoint.limits === undefined) continue;
            const labels = { group: group.name, endpoint: endpoint.name, pool: endpoint.pool ?? endpoint.name, lane: endpoint.lane ?? '' };
            this.set(labels, limits.inflight(endpointKey(endpoint)));
          }
        }
      },
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  onEvent(context: RequestContext, event: EngineEvent): void {
    switch (event.type) {
      case 'attempt_start':
        this.#open.add(context.requestId);
        return;
      case 'attempt_failed':
        this.#attempt(context.group, event.endpoint, event.failure.class);
        return;
      case 'done':
        if (event.summary.endpoint !== null) this.#attempt(context.group, event.summary.endpoint, 'ok');
        if (event.summary.ttftMs !== null)
          this.#histogram(this.#ttft, 't', context.group).observe(event.summary.ttftMs / 1000);
        this.#end(context, 'ok', event.summary.endpoint, event.summary.ms);
        this.#countUsage(context.group, event.summary);
        return;
      case 'failed':
        this.#end(context, 'failed', null, event.summary.ms);
        return;
      case 'interrupted':
        this.#end(context, 'interrupted', event.summary.endpoint, event.summary.ms);
        this.#countUsage(context.group, event.summary);
        return;
      case 'cancelled':
        this.#end(context, 'cancelled', event.summary.endpoint, null);
        return;
      default:
        // chunk, commit, completion: nothing to count.
        return;
    }
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #end(context: RequestContext, outcome: RequestOutcome, endpoint: string | null, ms: number | null): void {
    this.#open.delete(context.requestId);
    this.#request(context.group, endpoint ?? '', outcome);
    if (ms !== null) this.#histogram(this.#duration, 'd', context.group).observe(ms / 1000);
  }

  #countUsage(group: string, summary: RequestSummary): void {
    const endpoint = summary.endpoint;
    const figures = endpoint !== null ? this.#usage?.figuresOf(group, summary) : null;
    if (!figures || endpoint === null) return;
    const kinds = [
      ['prompt', figures.prompt_tokens],
      ['completion', figures.completion_tokens],
      ['cached', figures.cached_tokens],
      ['reasoning', figures.reasoning_tokens],
    ] as const;
    for (const [kind, n] of kinds) {
      if (n > 0) this.#tokenCounts.add(`${group}\u0000${endpoint}\u0000${kind}`, () => ({ group, endpoint, kind }), n);
    }
    if (figures.cost !== null && figures.cost > 0) {
      this.#costCounts.add(`${group}\u0000${endpoint}`, () => ({ group, endpoint }), figures.cost);
    }
  }

  #request(group: string, endpoint: string, outcome: RequestOutcome): void {
    this.#requestCounts.add(`${group}\u0000${endpoint}\u0000${outcome}`, () => ({ group, endpoint, outcome }));
  }

  #attempt(group: string, endpoint: string, result: string): void {
    this.#attemptCounts.add(`${group}\u0000${endpoint}\u0000${result}`, () => ({ group, endpoint, result }));
  }

  #histogram(histogram: Histogram<'group'>, tag: string, group: string): HistogramChild {
    return cached(this.#histogramChildren, `${tag}\u0000${group}`, () => histogram.labels({ group }));
  }
}

/** prom-client resolves a label set on every call; its child is kept per joined key instead. */
function cached<T>(children: Map<string, T>, key: string, make: () => T): T {
  let child = children.get(key);
  if (child === undefined) {
    child = make();
    children.set(key, child);
  }
  return child;
}
