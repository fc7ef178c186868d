/**
 * Per-lane limits (`rpm`, `tpm`, `max_concurrency`): what each lane has in
 * flight and has sent inside its window. A saturated lane is skipped, never
 * failed and never cooled; these counters only say when it may be used again.
 *
 * The windows are sliding logs rather than token buckets: a bucket lets a
 * full burst through on top of the refill, so twice the limit can land in one
 * window, and a provider counting per minute answers the second half with 429.
 */
import type { ChatRequest, Endpoint } from './types.js';

interface TokenEntry {
  at: number;
  tokens: number;
}

/** One lane's usage, keyed by its health identity (same URL, model and key share it). */
interface LaneUse {
  inflight: number;
  /** Start times of the requests inside the window, oldest first. */
  sent: number[];
  /** Tokens charged inside the window, oldest first (estimates, corrected by reported usage). */
  tokens: TokenEntry[];
}

/** What an attempt holds on its lane while it runs. */
export interface LaneHold {
  readonly key: string;
  readonly use: LaneUse;
  /** The tpm charge, corrected once the real usage is known. */
  readonly charge: TokenEntry | null;
  released: boolean;
}

/** Tracks every lane's usage and wakes whoever waits for a slot when one frees up. */
export class LaneLimiter {
  readonly #lanes = new Map<string, LaneUse>();
  readonly #now: () => number;
  #waiters: Array<() => void> = [];

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Requests running on the lane `key` now. */
  inflight(key: string): number {
    return this.#lanes.get(key)?.inflight ?? 0;
  }

  /**
   * 0 when `endpoint` (the lane `key`) may start a request costing about
   * `tokens` now; else the ms until a slot may free up, `Infinity` when only
   * a running request ending can free it.
   */
  waitFor(endpoint: Endpoint, key: string, tokens: number): number {
    const limits = endpoint.limits;
    const use = this.#lanes.get(key);
    if (!limits || !use) return 0;
    const now = this.#now();
    prune(use, now - limits.windowMs);
    let wait = 0;
    if (limits.maxConcurrency !== undefined && use.inflight >= limits.maxConcurrency) wait = Infinity;
    if (limits.rpm !== undefined && use.sent.length >= limits.rpm) {
      wait = Math.max(wait, use.sent[use.sent.length - limits.rpm]! + limits.windowMs - now);
    }
    if (limits.tpm !== undefined && use.tokens.length > 0) {
      let total = 0;
      for (const entry of use.tokens) total += entry.tokens;
      // A request larger than the whole budget still goes through on an idle lane.
      let excess = total + Math.min(tokens, limits.tpm) - limits.tpm;
      for (const entry of use.tokens) {
        if (excess <= 0) break;
        excess -= entry.tokens;
        wait = Math.max(wait, entry.at + limits.windowMs - now);
      }
    }
    return Math.max(0, wait);
  }

  /** The attempt starts on the lane: count it against the lane's limits. */
  acquire(endpoint: Endpoint, key: string, tokens: number): LaneHold {
    let use = this.#lanes.get(key);
    if (!use) {
      use = { inflight: 0, sent: [], tokens: [] };
      this.#lanes.set(key, use);
    }
    use.inflight += 1;
    const limits = endpoint.limits;
    let charge: TokenEntry | null = null;
    if (limits) {
      const now = this.#now();
      prune(use, now - limits.windowMs);
      if (limits.rpm !== undefined) use.sent.push(now);
      if (limits.tpm !== undefined) {
        charge = { at: now, tokens };
        use.tokens.push(charge);
      }
    }
    return { key, use, charge, released: false };
  }

  /** The attempt no longer runs; idempotent. */
  release(hold: LaneHold): void {
    if (hold.released) return;
    hold.released = true;
    hold.use.inflight -= 1;
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Replace the estimated tokens with what the upstream reported. */
  settle(hold: LaneHold, tokens: number): void {
    if (hold.charge) hold.charge.tokens = tokens;
  }

  /** Resolves at the next release of any lane (the caller re-checks its lanes). */
  nextRelease(): { promise: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    this.#waiters.push(wake);
    return { promise, cancel: () => (this.#waiters = this.#waiters.filter((w) => w !== wake)) };
  }
}

function prune(use: LaneUse, before: number): void {
  let drop = 0;
  while (drop < use.sent.length && use.sent[drop]! <= before) drop++;
  if (drop > 0) use.sent.splice(0, drop);
  drop = 0;
  while (drop < use.tokens.length && use.tokens[drop]!.at <= before) drop++;
  if (drop > 0) use.tokens.splice(0, drop);
}

/**
 * A request's token cost before it is sent: about 4 characters per token of
 * the messages, plus the completion it may ask for. Corrected by the
 * reported usage when the answer ends.
 */
export function estimateTokens(body: ChatRequest): number {
  let estimate = estimates.get(body);
  if (estimate === undefined) {
    estimate = measureTokens(body);
    estimates.set(body, estimate);
  }
  return estimate;
}

/** Once per request body: a waiting request re-checks its lanes many times. */
const estimates = new WeakMap<ChatRequest, number>();

function measureTokens(body: ChatRequest): number {
  let chars = 0;
  try {
    chars = JSON.stringify(body.messages ?? '').length;
  } catch {
    chars = 0;
  }
  const completion = typeof body.max_tokens === 'number' ? body.max_tokens : typeof body.max_completion_tokens === 'number' ? body.max_completion_tokens : 0;
  return Math.ceil(chars / 4) + completion;
}

/** A short description of the limit that saturates a lane, for the all-failed answer. */
export function describeLimits(endpoint: Endpoint): string {
  const l = endpoint.limits;
  if (!l) return 'local limit';
  const parts: string[] = [];
  if (l.maxConcurrency !== undefined) parts.push(`max_concurrency ${l.maxConcurrency}`);
  if (l.rpm !== undefined) parts.push(`rpm ${l.rpm}`);
  if (l.tpm !== undefined) parts.push(`tpm ${l.tpm}`);
  return parts.join(', ');
}
