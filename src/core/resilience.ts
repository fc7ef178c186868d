/**
 * The resilience options of a group (SPEC §3.11) with their defaults, and the
 * retry policy: backoff with jitter, honouring `Retry-After`, and a per-
 * endpoint budget so retries never hammer an upstream that keeps failing.
 */
import type { Failure, FailureClass, Group, RetryOptions } from './types.js';

export interface ResolvedOptions {
  retry: RetryOptions;
  resume: boolean;
  hedgeMs: number | null;
  deadlineMs: number | null;
  failoverOnContentFilter: boolean;
}

export const DEFAULT_RETRY: Readonly<RetryOptions> = {
  attempts: 0,
  on: ['rate_limit', 'server', 'network', 'stream_interrupted'],
  baseMs: 500,
  maxMs: 8000,
  retryAfterMaxS: 10,
};

/** Resolved once per group object (a reload makes a new one), not once per request. */
const resolved = new WeakMap<Group, ResolvedOptions>();

export function resolveOptions(group: Group): ResolvedOptions {
  let options = resolved.get(group);
  if (!options) {
    options = {
      retry: group.retry ?? DEFAULT_RETRY,
      resume: group.resume ?? true,
      hedgeMs: group.hedgeMs ?? null,
      deadlineMs: group.deadlineMs ?? null,
      failoverOnContentFilter: group.failoverOnContentFilter ?? true,
    };
    resolved.set(group, options);
  }
  return options;
}

/** A silent upstream stays silent: a timeout is never retried on the same endpoint. */
const NEVER_RETRIED: ReadonlySet<FailureClass> = new Set(['timeout']);

/**
 * How long to wait before retrying `failure` on the same endpoint (the
 * `retry`-th retry, 0-based), or null when it should move on instead.
 */
export function retryDelay(failure: Failure, retry: number, options: RetryOptions, random = Math.random): number | null {
  if (retry >= options.attempts || NEVER_RETRIED.has(failure.class) || !options.on.includes(failure.class)) return null;
  if (failure.retryAfterMs !== undefined) {
    return failure.retryAfterMs <= options.retryAfterMaxS * 1000 ? failure.retryAfterMs : null;
  }
  const exponential = Math.min(options.maxMs, options.baseMs * 2 ** retry);
  // "Equal jitter": at least half the backoff, so retries never bunch up at zero.
  return Math.round(exponential / 2 + (random() * exponential) / 2);
}

/** No endpoint is tried more often than this inside the window, whatever the retry settings say. */
export const RETRY_BUDGET = { maxTries: 4, windowMs: 3000 } as const;

/**
 * Remembers recent failed tries per endpoint so retries stay inside
 * `RETRY_BUDGET`. Only failures are counted: a healthy endpoint costs nothing.
 */
export class RetryBudget {
  /** Per endpoint, the times of its last `maxTries` failures (older ones cannot matter). */
  readonly #tries = new Map<string, number[]>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Count a failed try of `key` (first tries and retries alike). */
  record(key: string): void {
    let recent = this.#tries.get(key);
    if (!recent) {
      recent = [];
      this.#tries.set(key, recent);
    }
    recent.push(this.#now());
    if (recent.length > RETRY_BUDGET.maxTries) recent.shift();
  }

  /** Whether one more retry of `key` fits in the window. */
  allows(key: string): boolean {
    const recent = this.#tries.get(key);
    if (!recent || recent.length < RETRY_BUDGET.maxTries) return true;
    // Full: the oldest of the last maxTries failures must have left the window.
    return this.#now() - recent[0]! >= RETRY_BUDGET.windowMs;
  }
}
