/**
 * What the dashboard and `failproxy top` show besides `/status`: each finished
 * request with its failover chain, and per-minute series for the last hour.
 * An engine observer like the logger, so the live views see exactly what the
 * log records, without reading the log files.
 */
import type { EngineObserver, RequestContext } from '../core/observe.js';
import { finalStatus } from '../core/observe.js';
import type { EngineEvent, FailureClass } from '../core/types.js';
import { percentile } from '../logging/stats.js';
import type { UsageFigures } from '../logging/usage.js';
import type { UsageMeter } from './usage-meter.js';

/** One attempt of a finished request, as the live feed shows it. */
export interface FeedAttempt {
  n: number;
  endpoint: string;
  ok: boolean;
  /** Null for the attempt that answered, or one that was abandoned (a hedge that lost). */
  class: FailureClass | null;
  status: number | null;
  ms: number;
  message: string | null;
}

/** One finished request. */
export interface FeedRequest {
  id: string;
  /** ISO time it ended. */
  ts: string;
  group: string;
  stream: boolean;
  outcome: 'ok' | 'failed' | 'interrupted' | 'cancelled';
  status: number;
  endpoint: string | null;
  ms: number;
  ttft_ms: number | null;
  attempts: FeedAttempt[];
  usage: UsageFigures | null;
}

/** One minute of traffic. */
export interface SeriesPoint {
  /** Start of the minute, ms since the epoch. */
  t: number;
  requests: number;
  /** Requests that got no answer (failed or interrupted). */
  failed: number;
  /** Failed attempts by class (a request that failed over counts its failed attempts here). */
  failures: Partial<Record<FailureClass, number>>;
  /** Request durations of answered requests. */
  p50_ms: number | null;
  p95_ms: number | null;
}

const MINUTE = 60_000;
/** Minutes of history kept. */
export const SERIES_MINUTES = 60;
/** Finished requests kept for a view that connects later. */
export const FEED_RECENT = 100;
/** Latency samples kept per minute (the percentiles of a busier minute come from its first ones). */
const SAMPLES_PER_MINUTE = 500;

interface Bucket extends Omit<SeriesPoint, 'p50_ms' | 'p95_ms'> {
  durations: number[];
}

export class RequestFeed implements EngineObserver {
  readonly #pending = new Map<string, FeedAttempt[]>();
  /** The attempt answering each open request (the last to commit or resume). */
  readonly #answering = new Map<string, number>();
  readonly #recent: FeedRequest[] = [];
  readonly #buckets: Bucket[] = [];
  readonly #listeners = new Set<(request: FeedRequest) => void>();
  readonly #usage: UsageMeter | undefined;
  readonly #now: () => number;

  constructor(usage?: UsageMeter, now: () => number = Date.now) {
    this.#usage = usage;
    this.#now = now;
  }

  onEvent(context: RequestContext, event: EngineEvent): void {
    switch (event.type) {
      case 'attempt_failed':
        this.#attempts(context.requestId).push({
          n: event.n,
          endpoint: event.endpoint,
          ok: false,
          class: event.failure.class,
          status: event.failure.status ?? null,
          ms: event.ms,
          message: event.failure.message,
        });
        this.#bucket().failures[event.failure.class] = (this.#bucket().failures[event.failure.class] ?? 0) + 1;
        return;
      case 'commit':
      case 'resume':
        this.#answering.set(context.requestId, event.n);
        return;
      case 'attempt_abandoned':
        this.#attempts(context.requestId).push({
          n: event.n,
          endpoint: event.endpoint,
          ok: false,
          class: null,
          status: null,
          ms: event.ms,
          message: event.reason,
        });
        return;
      case 'done':
      case 'failed':
      case 'interrupted':
      case 'cancelled':
        this.#finish(context, event);
        return;
      default:
        return;
    }
  }

  /** Called with every finished request; returns the unsubscribe function. */
  subscribe(listener: (request: FeedRequest) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The last {@link FEED_RECENT} requests, oldest first. */
  recent(): FeedRequest[] {
    return [...this.#recent];
  }

  /** One point per minute of the last hour, oldest first, empty minutes included. */
  series(): SeriesPoint[] {
    const current = Math.floor(this.#now() / MINUTE) * MINUTE;
    const byMinute = new Map(this.#buckets.map((b) => [b.t, b]));
    const points: SeriesPoint[] = [];
    for (let t = current - (SERIES_MINUTES - 1) * MINUTE; t <= current; t += MINUTE) {
      const b = byMinute.get(t);
      points.push({
        t,
        requests: b?.requests ?? 0,
        failed: b?.failed ?? 0,
        failures: { ...(b?.failures ?? {}) },
        p50_ms: percentile(b?.durations ?? [], 50),
        p95_ms: percentile(b?.durations ?? [], 95),
      });
    }
    return points;
  }

  #attempts(requestId: string): FeedAttempt[] {
    let list = this.#pending.get(requestId);
    if (list === undefined) {
      list = [];
      this.#pending.set(requestId, list);
    }
    return list;
  }

  #finish(
    context: RequestContext,
    event: Extract<EngineEvent, { type: 'done' | 'failed' | 'interrupted' | 'cancelled' }>,
  ): void {
    const attempts = this.#pending.get(context.requestId) ?? [];
    const answering = this.#answering.get(context.requestId);
    this.#pending.delete(context.requestId);
    this.#answering.delete(context.requestId);
    const { summary } = event;
    if (event.type === 'done' && summary.endpoint !== null) {
      const last = summary.attempts.at(-1);
      const n = answering ?? Math.max(0, ...attempts.map((a) => a.n)) + 1;
      attempts.push({
        n,
        endpoint: summary.endpoint,
        ok: true,
        class: null,
        status: 200,
        ms: last?.ms ?? summary.ms,
        message: null,
      });
    }
    attempts.sort((a, b) => a.n - b.n);
    const outcome = event.type === 'done' ? 'ok' : event.type;
    const request: FeedRequest = {
      id: context.requestId,
      ts: new Date(this.#now()).toISOString(),
      group: context.group,
      stream: context.stream,
      outcome,
      status: finalStatus(event) ?? 0,
      endpoint: summary.endpoint,
      ms: summary.ms,
      ttft_ms: summary.ttftMs,
      attempts,
      usage: this.#usage?.figuresOf(context.group, summary) ?? null,
    };
    const bucket = this.#bucket();
    bucket.requests += 1;
    if (outcome === 'failed' || outcome === 'interrupted') bucket.failed += 1;
    if (outcome === 'ok' && bucket.durations.length < SAMPLES_PER_MINUTE) bucket.durations.push(summary.ms);
    this.#recent.push(request);
    if (this.#recent.length > FEED_RECENT) this.#recent.splice(0, this.#recent.length - FEED_RECENT);
    for (const listener of this.#listeners) listener(request);
  }

  /** The current minute's bucket; minutes older than the hour are dropped. */
  #bucket(): Bucket {
    const t = Math.floor(this.#now() / MINUTE) * MINUTE;
    const last = this.#buckets.at(-1);
    if (last !== undefined && last.t === t) return last;
    const bucket: Bucket = { t, requests: 0, failed: 0, failures: {}, durations: [] };
    this.#buckets.push(bucket);
    const oldest = t - (SERIES_MINUTES - 1) * MINUTE;
    while (this.#buckets.length > 0 && this.#buckets[0]!.t < oldest) this.#buckets.shift();
    return bucket;
  }
}
