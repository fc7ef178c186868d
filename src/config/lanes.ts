/**
 * Key pools and the endpoint options that spread load (issue 15): `apikey`
 * as a list of keys, `keys`, `weight`, `priority`, `rpm`, `tpm`,
 * `max_concurrency`, `limit_window` and `drop`. One endpoint with N keys
 * becomes N lanes: the same endpoint with one key each, named by a short,
 * non-secret fingerprint of the key, sharing a `pool` id.
 */
import { createHash } from 'node:crypto';
import type { Endpoint, Group, GroupStrategy, KeyStrategy, LaneLimits } from '../core/types.js';
import { isPlainObject, type EndpointDraft, type MissingVar } from './endpoint.js';
import { describeKind, describeValue, indexPath, keyPath, type ProblemSink } from './problems.js';

export const KEY_STRATEGIES: readonly KeyStrategy[] = ['round_robin', 'fill_first', 'random', 'least_inflight'];
export const POOL_FIELDS = ['keys', 'weight', 'priority', 'rpm', 'tpm', 'max_concurrency', 'limit_window', 'drop'] as const;
const DEFAULT_WINDOW_S = 60;

/** One key of a pool as written, resolved from the environment. */
export interface PoolKey {
  value: string;
  missing: MissingVar[];
}

type SpreadOptions = Pick<Endpoint, 'keys' | 'weight' | 'priority' | 'limits' | 'drop'>;

/** Reads the load-spreading options of one endpoint; every mistake is reported with its path. */
export function readSpreadOptions(raw: Record<string, unknown>, at: string, sink: ProblemSink): SpreadOptions {
  const out: SpreadOptions = {};
  const value = (key: string): unknown => (raw[key] === null ? undefined : raw[key]);
  const number = (key: string, valid: (n: number) => boolean, expected: string): number | undefined => {
    const v = value(key);
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isFinite(v) && valid(v)) return v;
    sink.error(keyPath(at, key), `expected ${expected}, got ${describeValue(v)}`);
    return undefined;
  };
  const keys = value('keys');
  if (keys !== undefined) {
    if (typeof keys === 'string' && (KEY_STRATEGIES as readonly string[]).includes(keys)) out.keys = keys as KeyStrategy;
    else sink.error(keyPath(at, 'keys'), `expected one of ${KEY_STRATEGIES.join(', ')}, got ${describeValue(keys)}`);
  }
  const weight = number('weight', (n) => n > 0, 'a number > 0');
  if (weight !== undefined) out.weight = weight;
  const priority = number('priority', Number.isInteger, 'an integer (lower tiers are tried first)');
  if (priority !== undefined) out.priority = priority;
  const positiveInt = (n: number): boolean => Number.isInteger(n) && n > 0;
  const rpm = number('rpm', positiveInt, 'a positive integer (requests per minute, per key)');
  const tpm = number('tpm', positiveInt, 'a positive integer (tokens per minute, per key)');
  const concurrency = number('max_concurrency', positiveInt, 'a positive integer (requests in flight, per key)');
  const window = number('limit_window', (n) => n > 0, 'a positive number of seconds');
  if (rpm !== undefined || tpm !== undefined || concurrency !== undefined) {
    const limits: LaneLimits = { windowMs: Math.round((window ?? DEFAULT_WINDOW_S) * 1000) };
    if (rpm !== undefined) limits.rpm = rpm;
    if (tpm !== undefined) limits.tpm = tpm;
    if (concurrency !== undefined) limits.maxConcurrency = concurrency;
    out.limits = limits;
  }
  const drop = value('drop');
  if (drop !== undefined) {
    const list = Array.isArray(drop) ? drop : [drop];
    if (list.every((d): d is string => typeof d === 'string' && d !== '')) out.drop = list;
    else sink.error(keyPath(at, 'drop'), `expected a list of parameter names, e.g. [temperature, top_p], got ${describeValue(drop)}`);
  }
  return out;
}

/**
 * Reads `apikey` written as a list. Returns undefined (with problems reported)
 * when an item is not a string; keys are added to `secrets` as they resolve.
 */
export function readKeyList(
  list: unknown[],
  path: string,
  ctx: { env: NodeJS.ProcessEnv; sink: ProblemSink },
  resolve: (raw: string) => { value: string; missing: string[] },
): PoolKey[] | undefined {
  if (list.length === 0) {
    ctx.sink.error(path, 'expected at least one key in the list');
    return undefined;
  }
  const keys: PoolKey[] = [];
  let ok = true;
  list.forEach((item, i) => {
    const at = indexPath(path, i);
    if (typeof item !== 'string') {
      ctx.sink.error(at, `expected a string, got ${describeKind(item)}`);
      ok = false;
      return;
    }
    const { value, missing } = resolve(item);
    keys.push({ value, missing: missing.map((variable) => ({ path: at, variable })) });
  });
  return ok ? keys : undefined;
}

/**
 * Expands every draft that carries a key list into one draft per key (a
 * lane). A lane whose `${VAR}` is unset keeps its `missing` list and is
 * skipped later with a warning, like an endpoint; a key written twice is one lane.
 */
export function expandLanes(drafts: EndpointDraft[], sink: ProblemSink): EndpointDraft[] {
  const out: EndpointDraft[] = [];
  for (const draft of drafts) {
    if (!draft.keys) {
      out.push(draft);
      continue;
    }
    const pool = draft.endpoint.name;
    const seen = new Set<string>();
    const taken = new Set<string>();
    draft.keys.forEach((key, i) => {
      const at = indexPath(keyPath(draft.at, 'apikey'), i);
      if (key.missing.length === 0 && seen.has(key.value)) {
        sink.warning(at, 'the same key appears twice in this pool; it is used once');
        return;
      }
      seen.add(key.value);
      const lane = key.missing.length > 0 ? `key${i + 1}-unset` : laneFingerprint(draft.endpoint, key.value, taken);
      taken.add(lane);
      const endpoint: Endpoint = { ...draft.endpoint, name: `${pool}@${lane}`, apikey: key.value, pool, lane };
      out.push({ endpoint, missing: [...draft.missing, ...key.missing], at });
    });
  }
  return out;
}

const TYPE_PREFIX: Record<Endpoint['type'], string> = { openai: '', openrouter: 'or-', chutes: 'ch-' };

/**
 * A short name for a key that reveals nothing of it: a hash, never its
 * characters. Four hex digits, more only when two keys of one pool collide.
 */
export function laneFingerprint(endpoint: Pick<Endpoint, 'type'>, key: string, taken: ReadonlySet<string> = new Set()): string {
  const hash = createHash('sha256').update(key).digest('hex');
  for (let len = 4; ; len += 2) {
    const name = `${TYPE_PREFIX[endpoint.type]}key-${hash.slice(0, len)}`;
    if (!taken.has(name) || len >= hash.length) return name;
  }
}

export const SPREAD_GROUP_OPTIONS = ['strategy', 'sticky'] as const;
const GROUP_STRATEGIES: readonly GroupStrategy[] = ['ordered', 'weighted', 'latency'];

/** `strategy` and `sticky` (true, false, or `{ ttl: seconds }`); null when one is wrong. */
export function readSpreadGroupOptions(raw: Record<string, unknown>, sink: ProblemSink): Pick<Group, 'strategy' | 'stickyTtlMs'> | null {
  const out: Pick<Group, 'strategy' | 'stickyTtlMs'> = {};
  let ok = true;
  const strategy = raw['strategy'];
  if (strategy !== undefined && strategy !== null) {
    if (typeof strategy === 'string' && (GROUP_STRATEGIES as readonly string[]).includes(strategy)) out.strategy = strategy as GroupStrategy;
    else {
      sink.error('strategy', `expected one of ${GROUP_STRATEGIES.join(', ')}, got ${describeValue(strategy)}`);
      ok = false;
    }
  }
  const sticky = raw['sticky'];
  if (sticky === false) out.stickyTtlMs = null;
  else if (isPlainObject(sticky)) {
    const ttl = sticky['ttl'];
    if (typeof ttl === 'number' && Number.isFinite(ttl) && ttl > 0) out.stickyTtlMs = Math.round(ttl * 1000);
    else {
      sink.error('sticky.ttl', `expected a positive number of seconds, got ${describeValue(ttl)}`);
      ok = false;
    }
    for (const key of Object.keys(sticky)) if (key !== 'ttl') sink.warning(keyPath('sticky', key), 'unknown field, ignored');
  } else if (sticky !== undefined && sticky !== null && sticky !== true) {
    sink.error('sticky', `expected true, false or { ttl: seconds }, got ${describeValue(sticky)}`);
    ok = false;
  }
  return ok ? out : null;
}
