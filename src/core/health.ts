/**
 * Per-endpoint cooldown state (SPEC §3.7), a small circuit breaker:
 * closed (ok) → open (cooling until T) → half-open (one probe allowed) → closed.
 * Which failures cool an endpoint, and for how long, is the policy table below.
 *
 * The tracker always answers from a local view, synchronously, so the request
 * path never waits on I/O. A {@link HealthStore} decides whether that view is
 * private to this process (the in-memory default) or shared with other
 * instances (`serve --redis`): the tracker tells the store what changed here,
 * and the store pushes in what changed elsewhere.
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
  content_filter: { kind: 'never' },
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

/** The part of an endpoint's health that instances sharing a store agree on. */
export interface SharedHealth {
  consecutive: number;
  /** Epoch ms; 0 when closed. */
  openUntil: number;
  /** Length of the last cooldown, reused when a half-open probe fails. */
  openMs: number;
  reason: FailureClass | null;
  message: string | null;
}

/**
 * One failure as the policy judged it, in a form a shared store can recount
 * atomically against the shared state (its consecutive count may be higher
 * than the local one).
 */
export interface FailureUpdate {
  /** `immediate` opens for `ms` at once; `consecutive` opens for `openMs` once `threshold` failures in a row are counted. */
  rule: 'immediate' | 'consecutive';
  ms: number;
  threshold: number;
  openMs: number;
  /** The failure was the half-open probe: it reopens for the last cooldown's length. */
  wasProbe: boolean;
  at: number;
  reason: FailureClass;
  message: string | null;
}

/** What a store may call back into the tracker. */
export interface HealthSink {
  /** Replace the local view of one endpoint with the shared state (null or all-zero = closed). */
  apply(id: string, state: SharedHealth | null): void;
  /** The local view of every endpoint that is not closed (to resynchronise after an outage). */
  entries(): Array<[string, SharedHealth]>;
}

/** Whether the health state is shared, for `/status`. */
export interface HealthStoreStatus {
  store: 'memory' | 'redis';
  shared: boolean;
  /** Null for the in-memory store. */
  connected: boolean | null;
  /** Live instances sharing the state (this one included); null while unknown. */
  instances: number | null;
}

/**
 * Where health state lives beyond the local view. Every method is called on
 * the request path and must return at once: a shared store does its I/O in
 * the background and reports back through the {@link HealthSink}.
 */
export interface HealthStore {
  attach(sink: HealthSink): void;
  /**
   * An endpoint's cooldown has run out: may this instance send the half-open
   * probe? A shared store answers from a short-lived lock and says "not yet"
   * while it asks for it.
   */
  mayProbe(id: string, endpoint: Endpoint): boolean;
  failed(id: string, update: FailureUpdate): void;
  /** The endpoint answered while it had a non-closed state here. */
  succeeded(id: string, wasProbe: boolean): void;
  /** A half-open probe was cancelled: it proved nothing, someone else may probe. */
  released(id: string): void;
  status(): HealthStoreStatus;
  close(): Promise<void>;
}

/** The default: health is private to this process. */
export class MemoryHealthStore implements HealthStore {
  attach(): void {}
  mayProbe(): boolean {
    return true;
  }
  failed(): void {}
  succeeded(): void {}
  released(): void {}
  status(): HealthStoreStatus {
    return { store: 'memory', shared: false, connected: null, instances: 1 };
  }
  async close(): Promise<void> {}
}

interface Entry extends SharedHealth {
  probing: boolean;
  /**
   * Epoch ms until which a planned request holds the half-open probe: plan()
   * and beginAttempt() are apart in time, and concurrent requests planned in
   * between must not all see the endpoint as ready.
   */
  reservedUntil: number;
}

export interface PlannedEndpoint {
  endpoint: Endpoint;
  /** Tried late because it is cooling (or someone else is probing it). */
  cooling: boolean;
}

const fingerprints = new WeakMap<Endpoint, string>();
const healthIds = new WeakMap<Endpoint, string>();

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

/** {@link endpointKey} hashed into an opaque id, safe to store outside the process. */
export function endpointHealthId(endpoint: Endpoint): string {
  let id = healthIds.get(endpoint);
  if (id === undefined) {
    id = createHash('sha256').update(endpointKey(endpoint)).digest('hex').slice(0, 24);
    healthIds.set(endpoint, id);
  }
  return id;
}

export class HealthTracker {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #store: HealthStore;

  /** `store` defaults to the private, in-memory one. */
  constructor(now: () => number = Date.now, store: HealthStore = new MemoryHealthStore()) {
    this.#now = now;
    this.#store = store;
    store.attach({
      apply: (id, state) => this.#apply(id, state),
      entries: () => [...this.#entries].map(([id, e]) => [id, sharedPart(e)]),
    });
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
      const cooling = this.#entries.size > 0 && this.#isCooling(endpoint, now);
      (cooling ? late : ready).push({ endpoint, cooling });
    }
    return late.length === 0 ? ready : ready.concat(late);
  }

  #isCooling(endpoint: Endpoint, now: number): boolean {
    const id = endpointHealthId(endpoint);
    const entry = this.#entries.get(id);
    if (entry === undefined || entry.openUntil === 0) return false;
    if (entry.openUntil > now || entry.probing || entry.reservedUntil > now) return true;
    if (!this.#store.mayProbe(id, endpoint)) return true;
    // Half-open and ours to probe: this request holds the probe until it starts the attempt.
    entry.reservedUntil = now + endpoint.timeoutMs;
    return false;
  }

  /**
   * Called when an attempt starts. Returns true when this attempt is the
   * half-open probe (the first request after a cooldown ran out).
   */
  beginAttempt(endpoint: Endpoint): boolean {
    if (this.#entries.size === 0) return false;
    const id = endpointHealthId(endpoint);
    const entry = this.#entries.get(id);
    if (!entry || entry.openUntil === 0 || entry.probing) return false;
    const now = this.#now();
    if (entry.openUntil > now) return false;
    if (entry.reservedUntil <= now && !this.#store.mayProbe(id, endpoint)) return false;
    entry.reservedUntil = 0;
    entry.probing = true;
    return true;
  }

  /** The attempt answered: the breaker closes. */
  recordSuccess(endpoint: Endpoint): void {
    // The healthy path: no entry, nothing to tell anyone.
    if (this.#entries.size === 0) return;
    const id = endpointHealthId(endpoint);
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    this.#store.succeeded(id, entry.probing);
  }

  /** The attempt was cancelled by the caller: it proves nothing either way. */
  releaseAttempt(endpoint: Endpoint): void {
    if (this.#entries.size === 0) return;
    const id = endpointHealthId(endpoint);
    const entry = this.#entries.get(id);
    if (!entry?.probing) return;
    entry.probing = false;
    this.#store.released(id);
  }

  /** Count a failure and open the breaker when the policy says so. */
  recordFailure(endpoint: Endpoint, failure: Failure, options: CooldownOptions): void {
    const rule = COOLDOWN_POLICY[failure.class];
    if (rule.kind === 'never') {
      this.releaseAttempt(endpoint);
      return;
    }
    const id = endpointHealthId(endpoint);
    let entry = this.#entries.get(id);
    if (!entry) {
      entry = {
        consecutive: 0,
        openUntil: 0,
        openMs: 0,
        reason: null,
        message: null,
        probing: false,
        reservedUntil: 0,
      };
      this.#entries.set(id, entry);
    }
    const wasProbe = entry.probing;
    entry.probing = false;
    entry.consecutive += 1;
    const now = this.#now();
    const transientMs = options.seconds * 1000;
    let immediateMs = 0;
    if (rule.kind === 'immediate') immediateMs = rule.seconds * 1000;
    else if (rule.kind === 'retry_after') immediateMs = failure.retryAfterMs ?? rule.defaultSeconds * 1000;
    let ms = immediateMs;
    if (rule.kind === 'consecutive') {
      if (wasProbe) ms = entry.openMs || transientMs;
      else if (entry.consecutive >= options.failures) ms = transientMs;
    }
    if (ms > 0) {
      entry.reservedUntil = 0;
      entry.openUntil = now + ms;
      entry.openMs = ms;
      entry.reason = failure.class;
      entry.message = failure.message;
    }
    this.#store.failed(id, {
      rule: rule.kind === 'consecutive' ? 'consecutive' : 'immediate',
      ms: Math.round(immediateMs),
      threshold: options.failures,
      openMs: Math.round(transientMs),
      wasProbe,
      at: now,
      reason: failure.class,
      message: failure.message,
    });
  }

  snapshot(endpoint: Endpoint): HealthSnapshot {
    const entry = this.#entries.get(endpointHealthId(endpoint));
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

  /**
   * How long (ms) until the first of `endpoints` stops cooling, when every one
   * of them is cooling now; null when one is usable already (closed or
   * half-open) or there are none. What an all-failed answer can promise a
   * client that retries (`Retry-After`).
   */
  coolingFor(endpoints: readonly Endpoint[]): number | null {
    if (endpoints.length === 0 || this.#entries.size === 0) return null;
    const now = this.#now();
    let soonest = Infinity;
    for (const endpoint of endpoints) {
      const openUntil = this.#entries.get(endpointHealthId(endpoint))?.openUntil ?? 0;
      if (openUntil <= now) return null;
      soonest = Math.min(soonest, openUntil - now);
    }
    return soonest;
  }

  /** Whether (and with how many instances) this state is shared. */
  storeStatus(): HealthStoreStatus {
    return this.#store.status();
  }

  /** Release the store's connections (a no-op for the in-memory store). */
  close(): Promise<void> {
    return this.#store.close();
  }

  #apply(id: string, state: SharedHealth | null): void {
    if (state === null || (state.consecutive === 0 && state.openUntil === 0)) {
      this.#entries.delete(id);
      return;
    }
    const entry = this.#entries.get(id);
    if (!entry) {
      this.#entries.set(id, { ...sharedPart(state), probing: false, reservedUntil: 0 });
      return;
    }
    if (entry.openUntil !== state.openUntil) entry.reservedUntil = 0;
    Object.assign(entry, sharedPart(state));
  }
}

function sharedPart(e: SharedHealth): SharedHealth {
  return { consecutive: e.consecutive, openUntil: e.openUntil, openMs: e.openMs, reason: e.reason, message: e.message };
}
