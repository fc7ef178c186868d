/**
 * Routing strategies as pure orderings: how a key pool orders its lanes
 * (`keys`) and how a group orders its endpoints inside a priority tier
 * (`strategy`). Health (cooling last) and limits (saturated skipped) are
 * applied afterwards, by the caller.
 */
import type { Endpoint, GroupStrategy, KeyStrategy } from './types.js';

/** One endpoint of a group: a single upstream, or the lanes of a key pool. */
export interface Unit {
  lanes: Endpoint[];
  weight: number;
  priority: number;
  keys: KeyStrategy;
  /** Identity for the latency estimate: lanes of one endpoint share it. */
  latencyKey: string;
  /** Round-robin position. */
  next: number;
  /** Smooth weighted round robin's running score. */
  current: number;
}

/** Every this many requests, `latency` tries the endpoints in turn first, so a recovered one is seen again. */
export const LATENCY_EXPLORE_EVERY = 10;
/** Weight of the newest sample in the latency estimate. */
export const LATENCY_ALPHA = 0.3;

/**
 * The lanes of `unit` in the order its `keys` strategy picks for this
 * request. The strategy turns over the usable lanes only, so a resting key's
 * turns are shared by all its siblings rather than falling to the next one.
 */
export function orderLanes(unit: Unit, inflight: (lane: Endpoint) => number, random: () => number, usable: (lane: Endpoint) => boolean): Endpoint[] {
  if (unit.lanes.length === 1) return unit.lanes;
  let lanes = unit.lanes;
  let resting: Endpoint[] = [];
  if (!lanes.every(usable)) {
    resting = lanes.filter((lane) => !usable(lane));
    lanes = lanes.filter(usable);
    if (lanes.length === 0) return resting;
  }
  const ordered = orderUsable(unit, lanes, inflight, random);
  return resting.length === 0 ? ordered : ordered.concat(resting);
}

function orderUsable(unit: Unit, lanes: Endpoint[], inflight: (lane: Endpoint) => number, random: () => number): Endpoint[] {
  switch (unit.keys) {
    case 'fill_first':
      return lanes;
    case 'random':
      return shuffle([...lanes], random);
    case 'round_robin':
      return rotate(lanes, unit.next++ % lanes.length);
    case 'least_inflight': {
      // Round robin breaks ties, so idle lanes still take turns.
      const rotated = rotate(lanes, unit.next++ % lanes.length);
      const load = new Map(rotated.map((lane) => [lane, inflight(lane)]));
      return rotated.sort((a, b) => load.get(a)! - load.get(b)!);
    }
  }
}

/** Per tier: how many requests it has ordered (for the turns of `latency` exploration). */
export interface Tier {
  units: Unit[];
  served: number;
}

/**
 * The units of one priority tier in the order `strategy` picks: file order
 * (`ordered`); for `weighted`, the first pick by smooth weighted round robin
 * (nginx's: exact shares, evenly interleaved), then by weight; for `latency`,
 * best recent first-token time first, unmeasured ones before any, and every
 * {@link LATENCY_EXPLORE_EVERY}th request one of the others in turn first.
 */
export function orderTier(tier: Tier, strategy: GroupStrategy, latency: (unit: Unit) => number | undefined): Unit[] {
  const units = tier.units;
  if (units.length <= 1 || strategy === 'ordered') return units;
  const n = tier.served++;
  if (strategy === 'weighted') {
    let total = 0;
    let best = units[0]!;
    for (const unit of units) {
      unit.current += unit.weight;
      total += unit.weight;
      if (unit.current > best.current) best = unit;
    }
    best.current -= total;
    return [best, ...units.filter((u) => u !== best).sort((a, b) => b.weight - a.weight)];
  }
  const sorted = [...units].sort((a, b) => (latency(a) ?? -1) - (latency(b) ?? -1));
  if (n % LATENCY_EXPLORE_EVERY === LATENCY_EXPLORE_EVERY - 1) {
    // One of the others in turn: the best one is measured on every other request anyway.
    const others = sorted.slice(1);
    const explored = others[Math.floor(n / LATENCY_EXPLORE_EVERY) % others.length]!;
    return [explored, ...sorted.filter((u) => u !== explored)];
  }
  return sorted;
}

function rotate<T>(list: T[], start: number): T[] {
  return start === 0 ? [...list] : [...list.slice(start), ...list.slice(0, start)];
}

function shuffle<T>(list: T[], random: () => number): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}
