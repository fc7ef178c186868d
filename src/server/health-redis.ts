/**
 * Endpoint health shared by several `serve` instances through one Redis
 * (`serve --redis URL`). Reads never leave the process: each instance keeps
 * the tracker's local view, and every change is one atomic Lua script that
 * also publishes the new state, so the other instances apply it within
 * milliseconds. A healthy request makes no Redis call at all.
 *
 * Redis is an accelerator, never a dependency: every call is fire-and-forget
 * from the request path, commands fail at once while disconnected, and an
 * instance that cannot reach Redis (or gets no answer within a second) runs
 * on its local view, reconnects with backoff, and resynchronises.
 *
 * This file is the state-sync protocol (versions, probe locks, what to push
 * on resynchronisation); `health-redis-connection.ts` owns the clients,
 * up/down, heartbeats and backoff, and is reached only through `RedisLink`.
 *
 * Keys (all under the prefix): `ep:<id>` a hash per endpoint (c consecutive,
 * u open until, m open ms, r reason, msg message, v version), `probe:<id>`
 * the half-open probe lock, `instance:<id>` heartbeats; channel `health`.
 * `<id>` hashes base URL, model and a fingerprint of the key, never the key.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FailureUpdate, HealthSink, HealthStore, HealthStoreStatus, SharedHealth } from '../core/health.js';
import { redactSecrets } from '../core/redact.js';
import type { Endpoint, FailureClass } from '../core/types.js';
import { ANSWER_WITHIN_MS, RedisConnection, type RawFields, type RedisLink } from './health-redis-connection.js';

/** HMGET c u m r msg v, as Redis returns it (false/null for a missing field). */
type RawState = RawFields;

/** How `serve --redis` reaches Redis and reports on it. */
export interface RedisHealthOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://…` */
  url: string;
  /** Namespace for every key and the channel; default `failproxy:`. */
  prefix?: string;
  /** Called once when Redis becomes unusable and once when it is back. */
  onConnectionChange?: (event: 'unavailable' | 'back', detail: string) => void;
  /** How often this instance heartbeats (and checks that Redis answers); default 2000 ms. */
  heartbeatMs?: number;
  now?: () => number;
}

type LockState =
  { state: 'asking'; until: number } | { state: 'granted'; until: number } | { state: 'denied'; until: number };

/** How long a closed (or only counting) endpoint's hash outlives its last change. */
const KEEP_MS = 10 * 60_000;
const MESSAGE_MAX = 300;

/**
 * A {@link HealthStore} that shares endpoint health through Redis: local
 * changes go out as atomic scripts, other instances' changes come in on the
 * channel, and the local view decides whenever Redis is not usable.
 */
export class RedisHealthStore implements HealthStore {
  readonly instanceId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #now: () => number;
  readonly #connection: RedisConnection;
  /** The only way the protocol reaches Redis. */
  readonly #link: RedisLink;
  #sink: HealthSink | null = null;

  /** Latest shared version applied per endpoint: replies and messages may arrive out of order. */
  readonly #versions = new Map<string, number>();
  readonly #locks = new Map<string, LockState>();
  /** Endpoints whose local changes Redis has not confirmed (pushed on resynchronisation). */
  readonly #dirty = new Set<string>();

  constructor(options: RedisHealthOptions) {
    this.#prefix = options.prefix ?? 'failproxy:';
    this.#channel = `${this.#prefix}health`;
    this.#now = options.now ?? Date.now;
    this.#connection = new RedisConnection({
      url: options.url,
      prefix: this.#prefix,
      channel: this.#channel,
      instanceId: this.instanceId,
      heartbeatMs: options.heartbeatMs ?? 2000,
      now: this.#now,
      onConnectionChange: options.onConnectionChange,
      onMessage: (message) => this.#onMessage(message),
      resync: () => this.#resync(),
    });
    this.#link = this.#connection;
  }

  /** Connect in the background; resolves when shared, or after `waitMs` either way. */
  start(waitMs = 1000): Promise<boolean> {
    return this.#connection.start(waitMs);
  }

  attach(sink: HealthSink): void {
    this.#sink = sink;
  }

  mayProbe(id: string, endpoint: Endpoint): boolean {
    // Alone, the local view decides, as it would without Redis.
    if (!this.#link.up) return true;
    const now = this.#now();
    const lock = this.#locks.get(id);
    if (lock && now < lock.until) return lock.state === 'granted';
    this.#acquire(id, endpoint, now);
    return false;
  }

  failed(id: string, update: FailureUpdate): void {
    this.#locks.delete(id);
    const message = update.message === null ? '' : redactSecrets(update.message).slice(0, MESSAGE_MAX);
    this.#update(id, 'failure', [
      update.rule,
      String(update.ms),
      String(update.threshold),
      String(update.openMs),
      update.wasProbe ? '1' : '0',
      String(update.at),
      update.reason,
      message,
      this.instanceId,
      String(KEEP_MS),
      this.#channel,
      id,
    ]);
  }

  succeeded(id: string): void {
    this.#locks.delete(id);
    this.#update(id, 'success', [this.instanceId, String(KEEP_MS), this.#channel, id]);
  }

  released(id: string): void {
    this.#locks.delete(id);
    if (!this.#link.canSend()) return;
    this.#link.run('release', [this.#lockKey(id)], [this.instanceId, this.#channel, id]).catch(() => {});
  }

  status(): HealthStoreStatus {
    const up = this.#link.up;
    return { store: 'redis', shared: up, connected: up, instances: up ? this.#connection.instances : null };
  }

  /** Leave: this instance stops counting as live, and both connections close. */
  close(): Promise<void> {
    return this.#connection.close();
  }

  // -------------------------------------------------------------------------

  #key = (id: string): string => `${this.#prefix}ep:${id}`;
  #lockKey = (id: string): string => `${this.#prefix}probe:${id}`;

  /** One atomic change of an endpoint's shared state; kept for resynchronisation when it cannot be sent. */
  #update(id: string, script: 'failure' | 'success', args: string[]): void {
    if (!this.#link.canSend()) {
      this.#dirty.add(id);
      return;
    }
    this.#link.run(script, [this.#key(id), this.#lockKey(id)], args).then(
      (state) => this.#applyRaw(id, state as RawState),
      () => this.#dirty.add(id),
    );
  }

  #acquire(id: string, endpoint: Endpoint, now: number): void {
    if (!this.#link.canSend()) return;
    this.#locks.set(id, { state: 'asking', until: now + ANSWER_WITHIN_MS });
    // Long enough for the probe to get its first token; a crashed holder frees it by expiry.
    const lockMs = Math.max(1000, Math.round(endpoint.timeoutMs) + 2000);
    this.#link.run('acquire', [this.#key(id), this.#lockKey(id)], [this.instanceId, String(now), String(lockMs)]).then(
      (reply) => {
        const [verdict, state, pttl] = reply as [string, RawState, number | undefined];
        this.#applyRaw(id, state);
        const at = this.#now();
        if (verdict === 'granted') this.#locks.set(id, { state: 'granted', until: at + lockMs - 250 });
        else if (verdict === 'denied')
          this.#locks.set(id, { state: 'denied', until: at + Math.max(50, Number(pttl ?? 0)) });
        // 'state': the shared view is not half-open (reopened or closed); ask again later if ours still is.
        else this.#locks.set(id, { state: 'denied', until: at + 250 });
      },
      () => this.#locks.delete(id),
    );
  }

  #onMessage(message: string): void {
    try {
      const parsed = JSON.parse(message) as { id?: unknown; s?: unknown; released?: unknown };
      if (typeof parsed.id !== 'string') return;
      if (parsed.released) this.#locks.delete(parsed.id);
      else if (Array.isArray(parsed.s)) this.#applyRaw(parsed.id, parsed.s as RawState);
    } catch {
      // Not ours.
    }
  }

  /** Apply a shared state unless a newer one was already applied. */
  #applyRaw(id: string, raw: RawState, force = false): void {
    const state = parseState(raw);
    if (state === null) return;
    if (!force && state.version <= (this.#versions.get(id) ?? 0)) return;
    this.#versions.set(id, state.version);
    // A new shared state makes any lock answer about the old one stale.
    this.#locks.delete(id);
    this.#sink?.apply(id, state.health);
  }

  /**
   * After (re)connecting: adopt the shared state, and push what changed here
   * while Redis was away (or what Redis lost in a restart). The connection
   * goes live once this resolves; a rejection keeps it down.
   */
  async #resync(): Promise<void> {
    // Messages that arrive from now on are newer than what the scan reads.
    this.#versions.clear();
    this.#locks.clear();
    const remote = await this.#link.readHashes(`${this.#prefix}ep:`, ['c', 'u', 'm', 'r', 'msg', 'v']);

    const local = new Map(this.#sink?.entries() ?? []);
    const dirty = new Set(this.#dirty);
    this.#dirty.clear();
    const pushes: Array<Promise<unknown>> = [];
    for (const [id, raw] of remote) {
      if (dirty.has(id)) continue;
      this.#applyRaw(id, raw, true);
    }
    for (const id of new Set([...dirty, ...local.keys()])) {
      const mine = local.get(id);
      if (remote.has(id) && !dirty.has(id)) continue;
      if (mine === undefined) {
        // Closed here while Redis was away: the latest evidence is that it answers.
        pushes.push(
          this.#link.run(
            'success',
            [this.#key(id), this.#lockKey(id)],
            [this.instanceId, String(KEEP_MS), this.#channel, id],
          ),
        );
      } else {
        pushes.push(
          this.#link.run(
            'merge',
            [this.#key(id)],
            [...stateArgs(mine), String(this.#now()), String(KEEP_MS), this.#channel, id],
          ),
        );
      }
      pushes[pushes.length - 1]!.then(
        (state) => this.#applyRaw(id, state as RawState),
        () => this.#dirty.add(id),
      );
    }
    await Promise.all(pushes);
  }
}

interface ParsedState {
  version: number;
  health: SharedHealth | null;
}

/** HMGET c u m r msg v → the tracker's shape; null when the hash does not exist. */
function parseState(raw: RawState): ParsedState | null {
  if (!Array.isArray(raw) || raw.length < 6) return null;
  const num = (v: unknown): number => {
    const n = Number(v);
    return Number.isFinite(n) ? n : 0;
  };
  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  const version = num(raw[5]);
  if (version === 0) return null;
  const consecutive = num(raw[0]);
  const openUntil = num(raw[1]);
  const health =
    consecutive === 0 && openUntil === 0
      ? null
      : {
          consecutive,
          openUntil,
          openMs: num(raw[2]),
          reason: str(raw[3]) as FailureClass | null,
          message: str(raw[4]),
        };
  return { version, health };
}

function stateArgs(s: SharedHealth): string[] {
  const message = s.message === null ? '' : redactSecrets(s.message).slice(0, MESSAGE_MAX);
  return [
    String(s.consecutive),
    String(Math.round(s.openUntil)),
    String(Math.round(s.openMs)),
    s.reason ?? '',
    message,
  ];
}
