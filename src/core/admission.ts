/**
 * Which candidate a request starts next when lanes have limits: the first in
 * its order whose lane is not saturated. A saturated lane is skipped, never
 * failed; when every lane left is saturated the request waits for a slot, but
 * only when the wait fits its deadline (or, without one, the endpoint's
 * timeout). Otherwise the all-failed answer is a 429 that says so.
 */
import { performance } from 'node:perf_hooks';
import { describeLimits } from './limits.js';
import type { Candidate, RequestState } from './request-state.js';

/**
 * Take the next candidate to start off the queue, waiting for a slot when
 * every lane left is saturated. Undefined when nothing is left (or the
 * request was aborted while waiting). The slot is taken here, in the same
 * turn as the check (`state.reserved`), so requests woken together cannot
 * all take the last one.
 */
export async function nextCandidate(state: RequestState): Promise<Candidate | undefined> {
  if (!state.routing.limited(state.group)) return state.queue.shift();
  let waitStarted = -1;
  for (;;) {
    if (state.queue.length === 0 || state.abort.aborted) return undefined;
    let soonest = Infinity;
    for (let i = 0; i < state.queue.length; i++) {
      const wait = state.routing.waitFor(state.queue[i]!.endpoint, state.request.body);
      if (wait === 0) {
        const candidate = state.queue.splice(i, 1)[0]!;
        const hold = state.routing.begin(state.group, candidate.endpoint, state.request.body);
        if (hold) state.reserved = { endpoint: candidate.endpoint, hold };
        return candidate;
      }
      soonest = Math.min(soonest, wait);
    }
    const now = performance.now();
    if (waitStarted < 0) waitStarted = now;
    const left = waitBound(state, now) - (now - waitStarted);
    if (left <= 0 || (soonest !== Infinity && soonest > left)) {
      giveUp(state, soonest);
      return undefined;
    }
    await slotOrTimeout(state, Math.min(soonest, left));
  }
}

/** The request will not start the candidate it took a slot for: give the slot back. */
export function releaseReserved(state: RequestState): void {
  if (state.reserved) state.routing.limits.release(state.reserved.hold);
  state.reserved = null;
}

/** Index of the first queued candidate that may start now (for a hedge), or -1. */
export function readyIndex(state: RequestState): number {
  const now = performance.now();
  const limited = state.routing.limited(state.group);
  return state.queue.findIndex((c) => c.notBefore <= now && (!limited || state.routing.waitFor(c.endpoint, state.request.body) === 0));
}

/** How long a request may wait for a slot: what is left of its deadline, else the longest timeout. */
function waitBound(state: RequestState, now: number): number {
  if (state.options.deadlineMs !== null) return state.options.deadlineMs - (now - state.started);
  let longest = 0;
  for (const c of state.queue) longest = Math.max(longest, c.endpoint.timeoutMs);
  return longest;
}

/** Every lane left stays saturated past what the request can wait: each becomes a local 429. */
function giveUp(state: RequestState, soonest: number): void {
  const retryAfterMs = soonest === Infinity ? 1000 : Math.max(1000, Math.ceil(soonest));
  for (const candidate of state.queue.splice(0)) {
    const { endpoint } = candidate;
    state.failed.push({
      endpoint: endpoint.name,
      failure: { class: 'rate_limit', message: `skipped: the lane is at its local limit (${describeLimits(endpoint)})`, retryAfterMs },
      ms: 0,
    });
  }
}

async function slotOrTimeout(state: RequestState, ms: number): Promise<void> {
  const release = state.routing.limits.nextRelease();
  let timer: NodeJS.Timeout | undefined;
  let off: (() => void) | undefined;
  try {
    await Promise.race([
      release.promise,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(1, ms)))),
      new Promise<void>((resolve) => (off = state.abort.onAbort(resolve))),
    ]);
  } finally {
    clearTimeout(timer);
    off?.();
    release.cancel();
  }
}
