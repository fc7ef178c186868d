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
 * Keys (all under the prefix): `ep:<id>` a hash per endpoint (c consecutive,
 * u open until, m open ms, r reason, msg message, v version), `probe:<id>`
 * the half-open probe lock, `instance:<id>` heartbeats; channel `health`.
 * `<id>` hashes base URL, model and a fingerprint of the key, never the key.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { createClient } from 'redis';
import type { FailureUpdate, HealthSink, HealthStore, HealthStoreStatus, SharedHealth } from '../core/health.js';
import { redactSecrets } from '../core/redact.js';
import type { Endpoint, FailureClass } from '../core/types.js';
import { LUA } from './health-redis-lua.js';

type Client = ReturnType<typeof createClient>;
/** HMGET c u m r msg v, as Redis returns it (false/null for a missing field). */
type RawState = Array<string | number | null | false>;

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

/** A Redis that does not answer within this long counts as unavailable. */
const ANSWER_WITHIN_MS = 1000;
/** How long a closed (or only counting) endpoint's hash outlives its last change. */
const KEEP_MS = 10 * 60_000;
/** Commands in flight beyond which new updates stay local (a stalled Redis must not grow a queue). */
const MAX_IN_FLIGHT = 512;
const MESSAGE_MAX = 300;

export class RedisHealthStore implements HealthStore {
  readonly instanceId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #now: () => number;
  readonly #heartbeatMs: number;
  readonly #onChange: RedisHealthOptions['onConnectionChange'];
  readonly #client: Client;
  readonly #subscriber: Client;
  #sink: HealthSink | null = null;

  /** Usable: both connections ready, subscribed, resynchronised, and answering. */
  #up = false;
  #everUp = false;
  #reportedDown = false;
  #closed = false;
  #subscribed = false;
  #resyncing: Promise<void> | null = null;
  #resyncAgain = false;
  #inFlight = 0;
  #instances: number | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #firstReady: () => void = () => {};
  readonly #ready: Promise<void>;

  /** Latest shared version applied per endpoint: replies and messages may arrive out of order. */
  readonly #versions = new Map<string, number>();
  readonly #locks = new Map<string, LockState>();
  /** Endpoints whose local changes Redis has not confirmed (pushed on resynchronisation). */
  readonly #dirty = new Set<string>();
  readonly #shas = new Map<keyof typeof LUA, string>();

  constructor(options: RedisHealthOptions) {
    this.#prefix = options.prefix ?? 'failproxy:';
    this.#channel = `${this.#prefix}health`;
    this.#now = options.now ?? Date.now;
    this.#heartbeatMs = options.heartbeatMs ?? 2000;
    this.#onChange = options.onConnectionChange;
    this.#ready = new Promise((resolve) => (this.#firstReady = resolve));
    this.#client = createClient({
      url: options.url,
      // Fail commands at once while disconnected instead of queueing them.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: ANSWER_WITHIN_MS,
        reconnectStrategy: (retries) => Math.min(100 * 2 ** Math.min(retries, 5), 2000),
      },
    });
    this.#subscriber = this.#client.duplicate();
    for (const [name, client] of [
      ['commands', this.#client],
      ['subscriber', this.#subscriber],
    ] as const) {
      client.on('error', (e: Error) => this.#down(`${name} connection: ${e.message || e.name}`));
      client.on('end', () => this.#down(`${name} connection closed`));
      client.on('ready', () => this.#scheduleResync());
    }
  }

  /** Connect in the background; resolves when shared, or after `waitMs` either way. */
  async start(waitMs = 1000): Promise<boolean> {
    this.#client.connect().catch(() => {});
    this.#subscriber
      .connect()
      .then(() => this.#subscriber.subscribe(this.#channel, (message) => this.#onMessage(message)))
      .then(() => {
        // node-redis renews the subscription itself on every reconnection.
        this.#subscribed = true;
        this.#scheduleResync();
      })
      .catch(() => {});
    this.#heartbeat = setInterval(() => void this.#beat(), this.#heartbeatMs);
    this.#heartbeat.unref();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
    await Promise.race([this.#ready, waited]);
    clearTimeout(timer);
    if (!this.#up) this.#down(`no answer from redis within ${waitMs} ms`);
    return this.#up;
  }

  attach(sink: HealthSink): void {
    this.#sink = sink;
  }

  mayProbe(id: string, endpoint: Endpoint): boolean {
    // Alone, the local view decides, as it would without Redis.
    if (!this.#up) return true;
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
    if (!this.#canSend()) return;
    this.#run('release', [this.#lockKey(id)], [this.instanceId, this.#channel, id]).catch(() => {});
  }

  status(): HealthStoreStatus {
    return { store: 'redis', shared: this.#up, connected: this.#up, instances: this.#up ? this.#instances : null };
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#up) await withTimeout(this.#client.del(this.#instanceKey()), 300).catch(() => {});
    this.#up = false;
    for (const client of [this.#subscriber, this.#client]) {
      try {
        await client.disconnect();
      } catch {
        // Never connected, or already gone.
      }
    }
  }

  // -------------------------------------------------------------------------

  #key = (id: string): string => `${this.#prefix}ep:${id}`;
  #lockKey = (id: string): string => `${this.#prefix}probe:${id}`;
  #instanceKey = (): string => `${this.#prefix}instance:${this.instanceId}`;

  #canSend(): boolean {
    return this.#up && this.#inFlight < MAX_IN_FLIGHT;
  }

  /** One atomic change of an endpoint's shared state; kept for resynchronisation when it cannot be sent. */
  #update(id: string, script: 'failure' | 'success', args: string[]): void {
    if (!this.#canSend()) {
      this.#dirty.add(id);
      return;
    }
    this.#run(script, [this.#key(id), this.#lockKey(id)], args).then(
      (state) => this.#applyRaw(id, state as RawState),
      () => this.#dirty.add(id),
    );
  }

  #acquire(id: string, endpoint: Endpoint, now: number): void {
    if (!this.#canSend()) return;
    this.#locks.set(id, { state: 'asking', until: now + ANSWER_WITHIN_MS });
    // Long enough for the probe to get its first token; a crashed holder frees it by expiry.
    const lockMs = Math.max(1000, Math.round(endpoint.timeoutMs) + 2000);
    this.#run('acquire', [this.#key(id), this.#lockKey(id)], [this.instanceId, String(now), String(lockMs)]).then(
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

  /** Run a Lua script by SHA, loading it when Redis does not know it (first use, or after a restart). */
  async #run(name: keyof typeof LUA, keys: string[], args: string[]): Promise<unknown> {
    this.#inFlight += 1;
    try {
      const sha = this.#shas.get(name);
      if (sha !== undefined) {
        try {
          return await this.#client.evalSha(sha, { keys, arguments: args });
        } catch (e) {
          if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
        }
      }
      const loaded = await this.#client.scriptLoad(LUA[name]);
      this.#shas.set(name, loaded);
      return await this.#client.evalSha(loaded, { keys, arguments: args });
    } finally {
      this.#inFlight -= 1;
    }
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

  #down(detail: string): void {
    if (this.#closed) return;
    this.#up = false;
    if (this.#reportedDown) return;
    this.#reportedDown = true;
    this.#onChange?.('unavailable', detail);
  }

  #scheduleResync(): void {
    if (this.#closed) return;
    if (this.#resyncing) {
      this.#resyncAgain = true;
      return;
    }
    this.#resyncing = this.#resync()
      .catch((e: unknown) => this.#down(`resynchronising: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        this.#resyncing = null;
        if (this.#resyncAgain) {
          this.#resyncAgain = false;
          this.#scheduleResync();
        }
      });
  }

  /**
   * After (re)connecting: adopt the shared state, push what changed here while
   * Redis was away (or what Redis lost in a restart), then go live.
   */
  async #resync(): Promise<void> {
    if (!this.#client.isReady || !this.#subscriber.isReady || !this.#subscribed) return;
    // Messages that arrive from now on are newer than what the scan reads.
    this.#versions.clear();
    this.#locks.clear();
    this.#shas.clear();
    const remote = new Map<string, RawState>();
    const match = `${globEscape(this.#prefix)}ep:*`;
    const keys: string[] = [];
    for await (const key of this.#client.scanIterator({ MATCH: match, COUNT: 500 })) keys.push(key);
    const states = await Promise.all(keys.map((key) => this.#client.hmGet(key, ['c', 'u', 'm', 'r', 'msg', 'v'])));
    keys.forEach((key, i) => remote.set(key.slice(`${this.#prefix}ep:`.length), states[i] as RawState));

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
          this.#run(
            'success',
            [this.#key(id), this.#lockKey(id)],
            [this.instanceId, String(KEEP_MS), this.#channel, id],
          ),
        );
      } else {
        pushes.push(
          this.#run(
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
    await this.#beat(true);
  }

  /** Heartbeat: refresh this instance's key, count the live ones, and notice a Redis that stopped answering. */
  async #beat(fromResync = false): Promise<void> {
    if (this.#closed || !this.#client.isReady) return;
    if (!this.#up && !fromResync) {
      // Connected but not live: a stalled Redis that answers again needs a resync first.
      if (this.#subscriber.isReady && !this.#resyncing) this.#scheduleResync();
      return;
    }
    try {
      await withTimeout(
        this.#client.set(this.#instanceKey(), String(this.#now()), { PX: this.#heartbeatMs * 3 }),
        ANSWER_WITHIN_MS,
      );
      let count = 0;
      const match = `${globEscape(this.#prefix)}instance:*`;
      for await (const _ of this.#client.scanIterator({ MATCH: match, COUNT: 500 })) count += 1;
      this.#instances = count;
    } catch (e) {
      this.#down(
        e instanceof TimeoutError ? `no answer from redis within ${ANSWER_WITHIN_MS} ms` : `heartbeat: ${String(e)}`,
      );
      return;
    }
    if (fromResync && !this.#closed) this.#live();
  }

  #live(): void {
    this.#up = true;
    if (!this.#everUp) {
      this.#everUp = true;
      this.#firstReady();
    }
    if (this.#reportedDown) {
      this.#reportedDown = false;
      this.#onChange?.('back', 'health is shared again');
    }
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

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

class TimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
