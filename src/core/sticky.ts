/**
 * Sticky sessions: a conversation keeps hitting the lane that last answered
 * it, so provider prompt caches and local KV caches pay off. The pin is a
 * preference (a failing or saturated lane breaks it), it expires after an
 * idle time, and the table is bounded.
 */
import { hash } from 'node:crypto';
import type { ChatRequest } from './types.js';

/** Default idle time before a pin is forgotten (group option `sticky`). */
export const DEFAULT_STICKY_TTL_MS = 10 * 60 * 1000;
/** Most pins kept; the least recently used goes first. */
export const MAX_PINS = 10_000;

/**
 * What identifies a conversation: the client's `prompt_cache_key`, its
 * `metadata.user_id`, the session header the server passed, else a hash of
 * the system prompt and the first user message (which every turn repeats).
 * Null when the request has nothing to go by.
 */
export function sessionKey(body: ChatRequest, sessionId: string | undefined): string | null {
  const cacheKey = body['prompt_cache_key'];
  if (typeof cacheKey === 'string' && cacheKey !== '') return `k:${cacheKey}`;
  const metadata = body['metadata'];
  if (metadata && typeof metadata === 'object') {
    const user = (metadata as Record<string, unknown>)['user_id'];
    if (typeof user === 'string' && user !== '') return `u:${user}`;
  }
  if (sessionId !== undefined && sessionId !== '') return `s:${sessionId}`;
  let system: unknown;
  let firstUser: unknown;
  for (const message of body.messages) {
    if (system === undefined && (message.role === 'system' || message.role === 'developer')) system = message.content;
    if (message.role === 'user') {
      firstUser = message.content;
      break;
    }
  }
  if (firstUser === undefined) return null;
  let text: string;
  try {
    text = JSON.stringify([system ?? null, firstUser]);
  } catch {
    return null;
  }
  // One-shot hash (Node ≥ 20.12): a quarter of createHash's cost, paid on every request of the group.
  return `h:${hash('sha256', text, 'base64url').slice(0, 22)}`;
}

interface Pin {
  lane: string;
  at: number;
}

/** Session → the endpoint (lane) name that last answered it, LRU with an idle TTL. */
export class SessionPins {
  // A Map iterates in insertion order: re-inserting on use keeps the least recently used first.
  readonly #pins = new Map<string, Pin>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(max = MAX_PINS, now: () => number = Date.now) {
    this.#max = max;
    this.#now = now;
  }

  get size(): number {
    return this.#pins.size;
  }

  /** The pinned lane name, or null when none or idle longer than `ttlMs`. */
  get(key: string, ttlMs: number): string | null {
    const pin = this.#pins.get(key);
    if (!pin) return null;
    if (this.#now() - pin.at > ttlMs) {
      this.#pins.delete(key);
      return null;
    }
    return pin.lane;
  }

  set(key: string, lane: string): void {
    const pin = this.#pins.get(key);
    if (pin) {
      this.#pins.delete(key);
      pin.lane = lane;
      pin.at = this.#now();
      this.#pins.set(key, pin);
      return;
    }
    this.#pins.set(key, { lane, at: this.#now() });
    if (this.#pins.size > this.#max) {
      const oldest = this.#pins.keys().next();
      if (!oldest.done) this.#pins.delete(oldest.value);
    }
  }
}
