/**
 * Origins that refused a connection a moment ago, per dispatcher (one
 * engine's pool). An attempt at such an origin fails without a new connect:
 * under load every request would otherwise pay for a socket, an error and its
 * stack only to learn the same thing (the cooldown skips an endpoint only
 * after three failures, and only that endpoint, not every endpoint on the
 * dead host).
 */
import type { Dispatcher } from 'undici';

/**
 * Short, so a restarted server is tried again almost at once, and far below
 * any cooldown, so a half-open probe connects.
 */
export const REFUSED_RECENTLY_MS = 250;

const refusals = new WeakMap<Dispatcher, Map<string, number>>();

/** Milliseconds since `origin` refused a connection on `dispatcher`, or null when not recently. */
export function refusedRecently(dispatcher: Dispatcher, origin: string): number | null {
  const at = refusals.get(dispatcher)?.get(origin);
  if (at === undefined) return null;
  const ago = performance.now() - at;
  return ago < REFUSED_RECENTLY_MS ? ago : null;
}

export function noteRefusal(dispatcher: Dispatcher, origin: string): void {
  let byOrigin = refusals.get(dispatcher);
  if (byOrigin === undefined) {
    byOrigin = new Map();
    refusals.set(dispatcher, byOrigin);
  }
  byOrigin.set(origin, performance.now());
}
