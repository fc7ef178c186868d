/**
 * Where the tokens went (`logs --stats`): usage and cost summed from the
 * `request` records, by group, by endpoint or by day.
 */
import type { ChalkInstance } from 'chalk';
import type { LogRecord } from './types.js';
import { addUsage, emptyTotals, formatCost, usageFigures, type UsageTotals } from './usage.js';
import { localDateString } from './writer.js';

export type UsageBy = 'group' | 'endpoint' | 'day';
export const USAGE_BY: readonly UsageBy[] = ['group', 'endpoint', 'day'];

export interface UsageRow extends UsageTotals {
  /** The group (by group or endpoint), or the local day (by day). */
  key: string;
  /** By endpoint only. */
  endpoint?: string;
}

/**
 * Sums answered requests' usage. A record's own `cost` (written by the proxy)
 * wins; older lines without one fall back to the upstream's `usage.cost`.
 * Rows come sorted by key, endpoints in first-seen order inside a group.
 */
export function computeUsage(records: Iterable<LogRecord>, by: UsageBy): UsageRow[] {
  const rows = new Map<string, UsageRow>();
  for (const r of records) {
    if (r.event !== 'request' || r.usage === null || r.usage === undefined) continue;
    const figures = usageFigures(r.usage);
    if (figures === null) continue;
    if (typeof r.cost === 'number') figures.cost = r.cost;
    const key = by === 'day' ? localDateString(new Date(r.ts)) : String(r.group);
    const endpoint = by === 'endpoint' ? String(r.endpoint ?? '') : undefined;
    const id = endpoint === undefined ? key : `${key}\u0000${endpoint}`;
    let row = rows.get(id);
    if (row === undefined) {
      row = { key, ...(endpoint !== undefined ? { endpoint } : {}), ...emptyTotals() };
      rows.set(id, row);
    }
    addUsage(row, figures);
  }
  return [...rows.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The usage table: one row per key, then the total. */
export function formatUsageTable(rows: readonly UsageRow[], by: UsageBy, c: ChalkInstance): string[] {
  const header = [
    by === 'day' ? 'DAY' : 'GROUP',
    ...(by === 'endpoint' ? ['ENDPOINT'] : []),
    'REQUESTS',
    'PROMPT',
    'COMPLETION',
    'CACHED',
    'REASONING',
    'COST',
  ];
  const cells = (row: UsageTotals & { key: string; endpoint?: string }): string[] => [
    row.key,
    ...(by === 'endpoint' ? [row.endpoint ?? ''] : []),
    String(row.requests),
    String(row.prompt_tokens),
    String(row.completion_tokens),
    String(row.cached_tokens),
    String(row.reasoning_tokens),
    costCell(row),
  ];
  const total = rows.reduce(
    (acc, r) => {
      acc.requests += r.requests;
      acc.prompt_tokens += r.prompt_tokens;
      acc.completion_tokens += r.completion_tokens;
      acc.cached_tokens += r.cached_tokens;
      acc.reasoning_tokens += r.reasoning_tokens;
      acc.cost += r.cost;
      acc.unpriced += r.unpriced;
      return acc;
    },
    { key: 'total', ...(by === 'endpoint' ? { endpoint: '' } : {}), ...emptyTotals() },
  );
  const body = rows.map(cells);
  const all = [header, ...body, cells(total)];
  const textColumns = by === 'endpoint' ? 2 : 1;
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const layout = (row: string[]): string =>
    row
      .map((cell, i) => (i < textColumns ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [c.bold(layout(header)), ...body.map(layout), c.dim(layout(cells(total)))];
}

/** A cost that misses some requests says so: `$0.42 (+3 unpriced)`. */
function costCell(row: UsageTotals): string {
  if (row.requests > 0 && row.unpriced === row.requests) return '—';
  return row.unpriced > 0 ? `${formatCost(row.cost)} (+${row.unpriced} unpriced)` : formatCost(row.cost);
}

/**
 * `--since`: a span back from now (`90m`, `12h`, `7d`) or a local day
 * (`2026-12-01`, from its midnight). Null when the text is neither.
 */
export function parseSince(value: string, now: Date): Date | null {
  const span = /^(\d+)\s*([mhd])$/.exec(value.trim());
  if (span !== null) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[span[2] as 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(span[1]) * unit);
  }
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value.trim());
  if (day !== null) {
    const date = new Date(Number(day[1]), Number(day[2]) - 1, Number(day[3]));
    if (localDateString(date) === value.trim()) return date;
  }
  return null;
}
