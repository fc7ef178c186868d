/**
 * Groups that spread load: the order a request tries a group's endpoints and
 * key lanes in (strategy, key pool, sticky session), and the per-lane state
 * that order depends on (in-flight counts, limits, recent first-token times,
 * session pins). Health is applied on top by the caller: cooling lanes still
 * go last in every strategy.
 *
 * A group with no key pool and the `ordered` strategy takes none of this:
 * its endpoints are returned as written.
 */
import { endpointKey, type HealthTracker } from './health.js';
import { estimateTokens, LaneLimiter, type LaneHold } from './limits.js';
import { DEFAULT_STICKY_TTL_MS, SessionPins, sessionKey } from './sticky.js';
import { LATENCY_ALPHA, orderLanes, orderTier, type Tier, type Unit } from './strategy.js';
import type { ChatRequest, Endpoint, Group, GroupStrategy, Usage } from './types.js';

interface Layout {
  /** Nothing to decide: the endpoints in file order. */
  plain: boolean;
  strategy: GroupStrategy;
  /** Units by priority tier, best tier first. */
  tiers: Tier[];
  /** Pin sessions here (0 = off). */
  stickyTtlMs: number;
  /** Some lane has limits or is in a pool: its attempts are counted. */
  counted: boolean;
  /** Some lane has limits: a saturated one is skipped. */
  limited: boolean;
}

/** What a request is routed by. */
export interface RouteInput {
  group: Group;
  body: ChatRequest;
  sessionId?: string | undefined;
}

export interface Route {
  endpoints: readonly Endpoint[];
  /** The session this request belongs to, when sticky sessions apply. */
  session: string | null;
}

/** The routing state of one engine (or of engines sharing one health tracker). */
export class Routing {
  readonly limits: LaneLimiter;
  readonly pins: SessionPins;
  readonly #layouts = new WeakMap<Group, Layout>();
  readonly #latency = new Map<string, number>();
  readonly #random: () => number;

  constructor(now: () => number = Date.now, random: () => number = Math.random) {
    this.limits = new LaneLimiter(now);
    this.pins = new SessionPins(undefined, now);
    this.#random = random;
  }

  /** The order to try the group's endpoints in for this request, before health is applied. */
  route(input: RouteInput, usable: (lane: Endpoint) => boolean): Route {
    const layout = this.#layout(input.group);
    if (layout.plain) return { endpoints: input.group.endpoints, session: null };
    const session = layout.stickyTtlMs > 0 ? sessionKey(input.body, input.sessionId) : null;
    const pinned = session === null ? null : this.pins.get(`${input.group.name}\u0000${session}`, layout.stickyTtlMs);
    const inflight = (lane: Endpoint): number => this.limits.inflight(endpointKey(lane));
    const latency = (unit: Unit): number | undefined => this.#latency.get(unit.latencyKey);
    const endpoints: Endpoint[] = [];
    for (const tier of layout.tiers) {
      const units = orderTier(tier, layout.strategy, latency);
      const tierStart = endpoints.length;
      for (const unit of units) {
        const lanes = orderLanes(unit, inflight, this.#random, usable);
        const at = pinned === null ? -1 : lanes.findIndex((lane) => lane.name === pinned);
        if (at === -1) {
          endpoints.push(...lanes);
          continue;
        }
        // The pin is a preference: its lane first in its pool and, unless the
        // group is ordered, its endpoint first in its tier.
        const ordered = [lanes[at]!, ...lanes.slice(0, at), ...lanes.slice(at + 1)];
        if (layout.strategy === 'ordered') endpoints.push(...ordered);
        else endpoints.splice(tierStart, 0, ...ordered);
      }
    }
    return { endpoints, session };
  }

  /** Whether some lane of the group has limits (and may be saturated). */
  limited(group: Group): boolean {
    return this.#layout(group).limited;
  }

  /** An attempt starts on `endpoint`: hold its lane; null when the lane is not counted. */
  begin(group: Group, endpoint: Endpoint, body: ChatRequest): LaneHold | null {
    if (!this.#layout(group).counted) return null;
    const tokens = endpoint.limits?.tpm !== undefined ? estimateTokens(body) : 0;
    return this.limits.acquire(endpoint, endpointKey(endpoint), tokens);
  }

  /** ms until `endpoint` may start (0 = now, Infinity = when a running request ends). */
  waitFor(endpoint: Endpoint, body: ChatRequest): number {
    if (!endpoint.limits) return 0;
    const tokens = endpoint.limits.tpm !== undefined ? estimateTokens(body) : 0;
    return this.limits.waitFor(endpoint, endpointKey(endpoint), tokens);
  }

  /** The lane answered: pin the session to it, learn its latency, settle its token charge. */
  succeeded(group: Group, endpoint: Endpoint, session: string | null, ttftMs: number, usage: Usage | null, hold: LaneHold | null): void {
    const layout = this.#layout(group);
    if (layout.plain) return;
    if (session !== null) this.pins.set(`${group.name}\u0000${session}`, endpoint.name);
    if (layout.strategy === 'latency') {
      const key = latencyKeyOf(endpoint);
      const previous = this.#latency.get(key);
      this.#latency.set(key, previous === undefined ? ttftMs : previous + LATENCY_ALPHA * (ttftMs - previous));
    }
    if (hold && usage && Number.isFinite(usage.total_tokens)) this.limits.settle(hold, usage.total_tokens);
  }

  #layout(group: Group): Layout {
    let layout = this.#layouts.get(group);
    if (!layout) {
      layout = buildLayout(group);
      this.#layouts.set(group, layout);
    }
    return layout;
  }
}

function latencyKeyOf(endpoint: Endpoint): string {
  return `${endpoint.baseurl}|${endpoint.model}|${endpoint.pool ?? endpointKey(endpoint)}`;
}

function buildLayout(group: Group): Layout {
  const strategy = group.strategy ?? 'ordered';
  const units: Unit[] = [];
  for (const endpoint of group.endpoints) {
    const last = units[units.length - 1];
    if (endpoint.pool !== undefined && last?.lanes[0]?.pool === endpoint.pool) {
      last.lanes.push(endpoint);
      continue;
    }
    units.push({
      lanes: [endpoint],
      weight: endpoint.weight ?? 1,
      priority: strategy === 'ordered' ? 0 : (endpoint.priority ?? 0),
      keys: endpoint.keys ?? 'round_robin',
      latencyKey: latencyKeyOf(endpoint),
      next: 0,
      current: 0,
    });
  }
  const pooled = units.some((u) => u.lanes.length > 1);
  const priorities = [...new Set(units.map((u) => u.priority))].sort((a, b) => a - b);
  const tiers = priorities.map((p) => ({ units: units.filter((u) => u.priority === p), served: 0 }));
  const choice = pooled || (strategy !== 'ordered' && units.length > 1);
  const ttl = group.stickyTtlMs === undefined ? DEFAULT_STICKY_TTL_MS : (group.stickyTtlMs ?? 0);
  return {
    plain: !choice && !group.endpoints.some((e) => e.limits !== undefined),
    strategy,
    tiers,
    stickyTtlMs: choice ? ttl : 0,
    counted: group.endpoints.some((e) => e.pool !== undefined || e.limits !== undefined),
    limited: group.endpoints.some((e) => e.limits !== undefined),
  };
}

const routings = new WeakMap<HealthTracker, Routing>();

/**
 * The routing state that goes with a health tracker: engines sharing a
 * tracker share their lanes' counters too.
 */
export function routingOf(health: HealthTracker): Routing {
  let routing = routings.get(health);
  if (!routing) {
    routing = new Routing();
    routings.set(health, routing);
  }
  return routing;
}
