/**
 * Per-endpoint cooldown state (SPEC §3.7), a small circuit breaker:
 * closed (ok) → open (cooling until T) → half-open (one probe allowed) → closed.
 * Which failures cool an endpoint, and for how long, is the policy table below.
 */
import { createHash } from 'node:crypto';
import type { CooldownOptions, Endpoint, Failure, FailureClass } from './types.js';

type CooldownRule =
  | { kind: 'immediate'; seconds: number }
  | { kind: 'retry_after'; defaultSeconds: number }
  | { kind: 'consecutive' }
  | { kind: 'never' };

/** Policy is data: what each failure class does to an endpoint's health. */
export const COOLDOWN_POLICY: Record<FailureClass, CooldownRule> = {
  auth: { kind: 'immediate', seconds: 300 },
  permission: { kind: 'immediate', seconds: 300 },
  payment: { kind: 'immediate', seconds: 300 },
  not_found: { kind: 'immediate', seconds: 300 },
  rate_limit: { kind: 'retry_after', defaultSeconds: 30 },
  network: { kind: 'consecutive' },
  timeout: { kind: 'consecutive' },
  server: { kind: 'consecutive' },
  invalid_response: { kind: 'consecutive' },
  stream_interrupted: { kind: 'consecutive' },
  // The request's fault, not the endpoint's.
  bad_request: { kind: 'never' },
};

export type HealthState = 'ok' | 'cooling' | 'half_open';

export interface HealthSnapshot {
  state: HealthState;
  /** Epoch ms when the cooldown ends (cooling) or ended (half_open). */
  until: number | null;
  /** The failure that opened the breaker. */
  reason: FailureClass | null;
  message: string | null;
  consecutiveFailures: number;
}

interface Entry {
  consecutive: number;
  /** Epoch ms; 0 when closed. */
  openUntil: number;
  /** Length of the last cooldown, reused when a half-open probe fails. */
  openMs: number;
  reason: FailureClass | null;
  message: string | null;
  probing: boolean;
}

export interface PlannedEndpoint {
  endpoint: Endpoint;
  /** Tried late because it is cooling (or someone else is probing it). */
  cooling: boolean;
}

const fingerprints = new WeakMap<Endpoint, string>();

/**
 * Identity of an upstream for health purposes: the same base URL, model and
 * key share health across groups. The key enters only as a short hash.
 */
export function endpointKey(endpoint: Endpoint): string {
  let key = fingerprints.get(endpoint);
  if (key === undefined) {
    const keyHash = createHash('sha256').update(endpoint.apikey).digest('hex').slice(0, 12);
    key = `${endpoint.baseurl}|${endpoint.model}|${keyHash}`;
    fingerprints.set(endpoint, key);
  }
  return key;
}

export class HealthTracker {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * The order to try a group's endpoints in: file order, with cooling
   * endpoints moved to the end (still tried: the proxy never refuses without trying).
   */
  plan(endpoints: readonly Endpoint[]): PlannedEndpoint[] {
    const ready: PlannedEndpoint[] = [];
    const late: PlannedEndpoint[] = [];
    const now = this.#now();
    for (const endpoint of endpoints) {
      const entry = this.#entries.get(endpointKey(endpoint));
      const cooling = entry !== undefined && (entry.openUntil > now || (entry.openUntil > 0 && entry.probing));
      (cooling ? late : ready).push({ endpoint, cooling });
    }
    return late.length === 0 ? ready : ready.concat(late);
  }

  /**
   * Called when an attempt starts. Returns true when this attempt is the
   * half-open probe (the first request after a cooldown ran out).
   */
  beginAttempt(endpoint: Endpoint): boolean {
    const entry = this.#entries.get(endpointKey(endpoint));
    if (!entry || entry.openUntil === 0 || entry.probing) return false;
    if (entry.openUntil > this.#now()) return false;
    entry.probing = true;
    return true;
  }

  /** The attempt answered: the breaker closes. */
  recordSuccess(endpoint: Endpoint): void {
    const key = endpointKey(endpoint);
    if (this.#entries.has(key)) this.#entries.delete(key);
  }

  /** The attempt was cancelled by the caller: it proves nothing either way. */
  releaseAttempt(endpoint: Endpoint): void {
    const entry = this.#entries.get(endpointKey(endpoint));
    if (entry) entry.probing = false;
  }

  /** Count a failure and open the breaker when the policy says so. */
  recordFailure(endpoint: Endpoint, failure: Failure, options: CooldownOptions): void {
    const key = endpointKey(endpoint);
    const rule = COOLDOWN_POLICY[failure.class];
    if (rule.kind === 'never') {
      this.releaseAttempt(endpoint);
      return;
    }
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { consecutive: 0, openUntil: 0, openMs: 0, reason: null, message: null, probing: false };
      this.#entries.set(key, entry);
    }
    const wasProbe = entry.probing;
    entry.probing = false;
    entry.consecutive += 1;
    let ms = 0;
    if (rule.kind === 'immediate') ms = rule.seconds * 1000;
    else if (rule.kind === 'retry_after') ms = failure.retryAfterMs ?? rule.defaultSeconds * 1000;
    else if (wasProbe) ms = entry.openMs || options.seconds * 1000;
    else if (entry.consecutive >= options.failures) ms = options.seconds * 1000;
    if (ms > 0) {
      entry.openUntil = this.#now() + ms;
      entry.openMs = ms;
      entry.reason = failure.class;
      entry.message = failure.message;
    }
  }

  snapshot(endpoint: Endpoint): HealthSnapshot {
    const entry = this.#entries.get(endpointKey(endpoint));
    if (!entry) return { state: 'ok', until: null, reason: null, message: null, consecutiveFailures: 0 };
    const open = entry.openUntil > 0;
    const state: HealthState = !open ? 'ok' : entry.openUntil > this.#now() ? 'cooling' : 'half_open';
    return {
      state,
      until: open ? entry.openUntil : null,
      reason: open ? entry.reason : null,
      message: open ? entry.message : null,
      consecutiveFailures: entry.consecutive,
    };
  }
}
