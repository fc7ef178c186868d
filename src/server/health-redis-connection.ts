/**
 * The connection half of `serve --redis`: two node-redis clients (one for
 * commands, one for the subscription, since a subscribed connection can send
 * nothing else), when they count as usable, and what happens when they are
 * not. The state-sync protocol in `health-redis.ts` sees only
 * {@link RedisLink}, and is called back with every channel message and at
 * every (re)connection to resynchronise.
 *
 * Redis is an accelerator, never a dependency: commands fail at once while
 * disconnected (no offline queue), a Redis that gets no answer within
 * {@link ANSWER_WITHIN_MS} counts as down, a stalled Redis cannot grow a queue
 * past the in-flight cap, and the owner hears once when it goes and once when
 * it is back — never once per failed reconnection attempt.
 */
import { createClient } from 'redis';
import { LUA } from './health-redis-lua.js';

type Client = ReturnType<typeof createClient>;

/** Name of one of the Lua scripts in `health-redis-lua.ts`. */
export type ScriptName = keyof typeof LUA;

/** A script's or HMGET's reply as Redis returns it (false/null for a missing field). */
export type RawFields = Array<string | number | null | false>;

/** A Redis that does not answer within this long counts as unavailable. */
export const ANSWER_WITHIN_MS = 1000;
/** Commands in flight beyond which new updates stay local (a stalled Redis must not grow a queue). */
const MAX_IN_FLIGHT = 512;

/** What the state-sync protocol may ask of the connection. */
export interface RedisLink {
  /** Usable: both connections ready, subscribed, resynchronised, and answering. */
  readonly up: boolean;
  /** Up, and not so busy that one more command would only queue behind a stalled Redis. */
  canSend(): boolean;
  /** Run a Lua script; rejects at once while disconnected. Callers check {@link canSend} first where it matters. */
  run(script: ScriptName, keys: string[], args: string[]): Promise<unknown>;
  /** HMGET `fields` of every key that starts with `keyPrefix`, by the rest of the key. */
  readHashes(keyPrefix: string, fields: string[]): Promise<Map<string, RawFields>>;
}

/** How to reach Redis, and the protocol's two callbacks. */
export interface RedisConnectionOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://…` */
  url: string;
  /** Namespace of this instance's heartbeat key (`instance:<id>`). */
  prefix: string;
  /** The pub/sub channel the state changes travel on. */
  channel: string;
  instanceId: string;
  heartbeatMs: number;
  now: () => number;
  /** Called once when Redis becomes unusable and once when it is back. */
  onConnectionChange: ((event: 'unavailable' | 'back', detail: string) => void) | undefined;
  /** A message on the channel (any instance's, this one's included). */
  onMessage: (message: string) => void;
  /**
   * Both connections are ready and subscribed: bring the local and the shared
   * view together before going live. Never runs twice at once; rejecting
   * keeps the link down until the next attempt.
   */
  resync: () => Promise<void>;
}

/** Both node-redis clients, their up/down state, heartbeats and script calls. */
export class RedisConnection implements RedisLink {
  readonly #options: RedisConnectionOptions;
  readonly #client: Client;
  readonly #subscriber: Client;

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
  readonly #shas = new Map<ScriptName, string>();

  constructor(options: RedisConnectionOptions) {
    this.#options = options;
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

  get up(): boolean {
    return this.#up;
  }

  /** Live instances counted by the last heartbeat (this one included); null before the first. */
  get instances(): number | null {
    return this.#instances;
  }

  /** Connect in the background; resolves when shared, or after `waitMs` either way. */
  async start(waitMs: number): Promise<boolean> {
    this.#client.connect().catch(() => {});
    this.#subscriber
      .connect()
      .then(() => this.#subscriber.subscribe(this.#options.channel, (message) => this.#options.onMessage(message)))
      .then(() => {
        // node-redis renews the subscription itself on every reconnection.
        this.#subscribed = true;
        this.#scheduleResync();
      })
      .catch(() => {});
    this.#heartbeat = setInterval(() => void this.#beat(), this.#options.heartbeatMs);
    this.#heartbeat.unref();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
    await Promise.race([this.#ready, waited]);
    clearTimeout(timer);
    if (!this.#up) this.#down(`no answer from redis within ${waitMs} ms`);
    return this.#up;
  }

  /** Stop heartbeating, drop this instance's heartbeat key if Redis answers, and disconnect both clients. */
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

  canSend(): boolean {
    return this.#up && this.#inFlight < MAX_IN_FLIGHT;
  }

  /** Run a Lua script by SHA, loading it when Redis does not know it (first use, or after a restart). */
  async run(name: ScriptName, keys: string[], args: string[]): Promise<unknown> {
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

  async readHashes(keyPrefix: string, fields: string[]): Promise<Map<string, RawFields>> {
    const keys: string[] = [];
    for await (const key of this.#client.scanIterator({ MATCH: `${globEscape(keyPrefix)}*`, COUNT: 500 })) {
      keys.push(key);
    }
    const states = await Promise.all(keys.map((key) => this.#client.hmGet(key, fields)));
    return new Map(keys.map((key, i) => [key.slice(keyPrefix.length), states[i] as RawFields]));
  }

  // -------------------------------------------------------------------------

  #instanceKey = (): string => `${this.#options.prefix}instance:${this.#options.instanceId}`;

  #down(detail: string): void {
    if (this.#closed) return;
    this.#up = false;
    if (this.#reportedDown) return;
    this.#reportedDown = true;
    this.#options.onConnectionChange?.('unavailable', detail);
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

  /** After (re)connecting: let the protocol resynchronise, then go live once a heartbeat is answered. */
  async #resync(): Promise<void> {
    if (!this.#client.isReady || !this.#subscriber.isReady || !this.#subscribed) return;
    // A restarted Redis has forgotten the scripts.
    this.#shas.clear();
    await this.#options.resync();
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
        this.#client.set(this.#instanceKey(), String(this.#options.now()), { PX: this.#options.heartbeatMs * 3 }),
        ANSWER_WITHIN_MS,
      );
      let count = 0;
      const match = `${globEscape(this.#options.prefix)}instance:*`;
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
      this.#options.onConnectionChange?.('back', 'health is shared again');
    }
  }
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
