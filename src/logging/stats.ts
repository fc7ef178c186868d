/**
 * Summaries of a log (the `logs --stats` view): per endpoint from `attempt`
 * records, per group from `request` records.
 */
import type { AttemptRecordLine, LogRecord, RequestRecord } from './types.js';

/** Failures whose attempt record has no class (should not happen) are counted under this key. */
export const UNCLASSIFIED = 'unknown';

export interface EndpointStats {
  group: string;
  endpoint: string;
  /** Attempts made against this endpoint. */
  requests: number;
  /** Attempts with `ok: true`. */
  successes: number;
  failures: number;
  /** successes / requests, from 0 to 1 (0 when there were no attempts). */
  success_rate: number;
  /** Failed attempts by failure class, keys in alphabetical order. */
  failures_by_class: Record<string, number>;
  /** Nearest-rank percentiles of `ms` over the successful attempts; null when there were none. */
  p50_ms: number | null;
  p95_ms: number | null;
  /** Nearest-rank percentiles of `ttft_ms` over every attempt that has a numeric one; null when none. */
  ttft_p50_ms: number | null;
  ttft_p95_ms: number | null;
}

export interface GroupStats {
  group: string;
  /** `request` records of this group. */
  requests: number;
  ok: number;
  failed: number;
  interrupted: number;
  cancelled: number;
  /** Nearest-rank percentiles of `ms` over the `ok` requests; null when there were none. */
  p50_ms: number | null;
  p95_ms: number | null;
}

/**
 * The nearest-rank percentile: sort the values ascending and take the one at
 * 1-based rank `ceil(p / 100 × N)` (at least 1). It is always one of the
 * values, never an interpolation. Examples: p50 of [10, 20, 30, 40] is 20
 * (rank 2); p95 of 1..20 is 19 (rank 19); p95 of 1..10 is 10 (rank 10); p50 of
 * [7] is 7. Null for no values.
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? null;
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

interface EndpointAcc {
  group: string;
  endpoint: string;
  requests: number;
  successes: number;
  failures: Map<string, number>;
  okMs: number[];
  ttft: number[];
}

/** Groups sorted by name; inside a group, endpoints in the order they first appear in the log. */
function sortByGroup<T extends { group: string }>(items: Iterable<T>): T[] {
  // Array.prototype.sort is stable, so first-appearance order survives inside a group.
  return [...items].sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
}

/** Per group and endpoint, from the `attempt` records (other records are ignored). */
export function computeStats(records: Iterable<LogRecord>): EndpointStats[] {
  const byKey = new Map<string, EndpointAcc>();
  for (const r of records) {
    if (r.event !== 'attempt' || r.abandoned === true) continue;
    const a: AttemptRecordLine = r;
    const key = `${a.group}\u0000${a.endpoint}`;
    let acc = byKey.get(key);
    if (acc === undefined) {
      acc = {
        group: String(a.group),
        endpoint: String(a.endpoint),
        requests: 0,
        successes: 0,
        failures: new Map(),
        okMs: [],
        ttft: [],
      };
      byKey.set(key, acc);
    }
    acc.requests++;
    if (a.ok === true) {
      acc.successes++;
      if (isNumber(a.ms)) acc.okMs.push(a.ms);
    } else {
      const cls = a.class ?? UNCLASSIFIED;
      acc.failures.set(cls, (acc.failures.get(cls) ?? 0) + 1);
    }
    if (isNumber(a.ttft_ms)) acc.ttft.push(a.ttft_ms);
  }
  return sortByGroup(byKey.values()).map((acc) => ({
    group: acc.group,
    endpoint: acc.endpoint,
    requests: acc.requests,
    successes: acc.successes,
    failures: acc.requests - acc.successes,
    success_rate: acc.requests === 0 ? 0 : acc.successes / acc.requests,
    failures_by_class: Object.fromEntries([...acc.failures].sort(([x], [y]) => (x < y ? -1 : 1))),
    p50_ms: percentile(acc.okMs, 50),
    p95_ms: percentile(acc.okMs, 95),
    ttft_p50_ms: percentile(acc.ttft, 50),
    ttft_p95_ms: percentile(acc.ttft, 95),
  }));
}

/** Per group request outcomes, from the `request` records (other records are ignored). */
export function computeGroupStats(records: Iterable<LogRecord>): GroupStats[] {
  const byGroup = new Map<string, GroupStats & { okMs: number[] }>();
  for (const r of records) {
    if (r.event !== 'request') continue;
    const req: RequestRecord = r;
    let acc = byGroup.get(req.group);
    if (acc === undefined) {
      acc = {
        group: String(req.group),
        requests: 0,
        ok: 0,
        failed: 0,
        interrupted: 0,
        cancelled: 0,
        p50_ms: null,
        p95_ms: null,
        okMs: [],
      };
      byGroup.set(req.group, acc);
    }
    acc.requests++;
    switch (req.outcome) {
      case 'ok':
        acc.ok++;
        if (isNumber(req.ms)) acc.okMs.push(req.ms);
        break;
      case 'failed':
        acc.failed++;
        break;
      case 'interrupted':
        acc.interrupted++;
        break;
      case 'cancelled':
        acc.cancelled++;
        break;
    }
  }
  return sortByGroup(byGroup.values()).map(({ okMs, ...g }) => ({
    ...g,
    p50_ms: percentile(okMs, 50),
    p95_ms: percentile(okMs, 95),
  }));
}
