/**
 * One-line, coloured renderings of log records for people: `logs`, and the
 * per-request chain `serve` prints on stderr.
 *
 * Colours. chalk 5 decides per stream at import time (its vendored
 * supports-color): none when the stream is not a TTY or `TERM=dumb`;
 * `FORCE_COLOR=0|false` turns them off and `FORCE_COLOR=1|2|3|true|""` forces
 * them even into a pipe; `--no-color` / `--color` in argv do the same. chalk 5
 * does NOT read `NO_COLOR`, so `colorLevelFor` adds it: a non-empty `NO_COLOR`
 * turns colours off unless `FORCE_COLOR` is set (FORCE_COLOR wins, as in Node's
 * own `tty.getColorDepth`).
 */
import { Chalk, supportsColor, supportsColorStderr, type ChalkInstance, type ColorSupportLevel } from 'chalk';
import type { AttemptRecordLine, ConfigRecord, LogLevel, LogRecord, RequestRecord, ServerRecord } from './types.js';
import type { EndpointStats, GroupStats } from './stats.js';
import { formatCost } from './usage.js';

/** The colour level to use on stdout or stderr, chalk's detection plus `NO_COLOR`. */
export function colorLevelFor(stream: 'stdout' | 'stderr', env: NodeJS.ProcessEnv = process.env): ColorSupportLevel {
  const detected = stream === 'stdout' ? supportsColor : supportsColorStderr;
  const level = detected === false ? 0 : detected.level;
  if (env.FORCE_COLOR !== undefined) return level;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  return level;
}

/** A chalk instance for `stream` (see `colorLevelFor`). */
export function colorsFor(stream: 'stdout' | 'stderr', env?: NodeJS.ProcessEnv): ChalkInstance {
  return new Chalk({ level: colorLevelFor(stream, env) });
}

/** Plain text, for tests and files. */
export const noColors: ChalkInstance = new Chalk({ level: 0 });

let stdoutColors: ChalkInstance | undefined;
let stderrColors: ChalkInstance | undefined;
const defaultStdout = (): ChalkInstance => (stdoutColors ??= colorsFor('stdout'));
const defaultStderr = (): ChalkInstance => (stderrColors ??= colorsFor('stderr'));

const MESSAGE_MAX = 200;

/** `312 ms` under a second, else `1.8 s` (the chain style). */
export function formatDuration(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '? ms';
  const rounded = Math.round(ms);
  // Rounded in tenths of a second so 2150 reads 2.2 s (toFixed alone gives 2.1: 2.15 is 2.1499… in binary).
  return rounded < 1000 ? `${rounded} ms` : `${(Math.round(ms / 100) / 10).toFixed(1)} s`;
}

/** `312ms` / `1.8s`: the compact form used in record lines and tables. */
export function formatDurationCompact(ms: unknown): string {
  return formatDuration(ms).replace(' ', '');
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** Local `HH:MM:SS.mmm` of an ISO timestamp (the raw text when it does not parse). */
export function formatTime(ts: string): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function formatDateTime(ts: string): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${formatTime(ts)}`;
}

/** A message on one line, quoted, cut to a readable length. */
function quote(message: unknown): string {
  let text = typeof message === 'string' ? message : (JSON.stringify(message) ?? '');
  text = text.replace(/\s+/g, ' ').trim();
  if (text.length > MESSAGE_MAX) text = `${text.slice(0, MESSAGE_MAX - 1)}…`;
  return JSON.stringify(text);
}

const str = (v: unknown, fallback = '-'): string => (v === null || v === undefined || v === '' ? fallback : String(v));

function levelLabel(level: LogLevel, c: ChalkInstance): string {
  const label = String(level).toUpperCase().padEnd(5);
  switch (level) {
    case 'debug':
      return c.gray(label);
    case 'info':
      return c.cyan(label);
    case 'warn':
      return c.yellow(label);
    case 'error':
      return c.red(label);
    default:
      return label;
  }
}

const ok = (c: ChalkInstance): string => c.green('✓');
const bad = (c: ChalkInstance): string => c.red('✗');

function attemptBody(a: AttemptRecordLine, c: ChalkInstance): string {
  const parts = [c.bold(str(a.group)), '  ', str(a.endpoint), ' '];
  if (a.ok) {
    parts.push(ok(c));
    if (a.status !== null && a.status !== undefined) parts.push(` ${a.status}`);
    parts.push(` ${formatDurationCompact(a.ms)}`);
    if (typeof a.ttft_ms === 'number') parts.push(c.dim(` ttft ${formatDurationCompact(a.ttft_ms)}`));
  } else {
    parts.push(bad(c), ' ', c.yellow(str(a.class, 'unknown')));
    if (a.status !== null && a.status !== undefined) parts.push(` ${a.status}`);
    parts.push(` ${formatDurationCompact(a.ms)}`);
    if (a.message !== null && a.message !== undefined && a.message !== '') parts.push(`  ${quote(a.message)}`);
  }
  parts.push(c.dim(`  [${str(a.id)} #${str(a.n)}]`));
  return parts.join('');
}

const OUTCOME_CLASS: Record<RequestRecord['outcome'], string> = {
  ok: 'ok',
  failed: 'failed',
  interrupted: 'stream_interrupted',
  cancelled: 'cancelled',
};

function requestBody(r: RequestRecord, c: ChalkInstance): string {
  const parts = [c.bold(str(r.group)), '  '];
  if (r.endpoint !== null && r.endpoint !== undefined) parts.push(`${r.endpoint} `);
  parts.push(r.outcome === 'ok' ? ok(c) : `${bad(c)} ${c.yellow(OUTCOME_CLASS[r.outcome] ?? str(r.outcome))}`);
  parts.push(` ${str(r.status)} ${formatDurationCompact(r.ms)}`);
  parts.push(c.dim(`  ${str(r.attempts)} attempt${r.attempts === 1 ? '' : 's'}`));
  if (typeof r.ttft_ms === 'number') parts.push(c.dim(`  ttft ${formatDurationCompact(r.ttft_ms)}`));
  if (typeof r.usage?.total_tokens === 'number') parts.push(c.dim(`  ${r.usage.total_tokens} tok`));
  if (typeof r.cost === 'number') parts.push(c.dim(`  ${formatCost(r.cost)}`));
  if (r.repaired === true) parts.push(c.dim('  repaired'));
  if (typeof r.api === 'string') parts.push(c.dim(`  via ${r.api}`));
  parts.push(c.dim(`  [${str(r.id)}]`));
  return parts.join('');
}

function configBody(r: ConfigRecord, c: ChalkInstance): string {
  const action = r.action === 'error' ? c.red(str(r.action)) : str(r.action);
  const parts = [action];
  if (r.group !== undefined) parts.push(c.bold(r.group));
  if (r.file !== undefined) parts.push(c.dim(r.file));
  if (r.message !== undefined && r.message !== '') parts.push(quote(r.message));
  return parts.join('  ');
}

function serverBody(r: ServerRecord, c: ChalkInstance): string {
  const parts = [str(r.action)];
  if (r.url !== undefined) parts.push(c.underline(r.url));
  if (r.message !== undefined && r.message !== '') parts.push(quote(r.message));
  return parts.join('  ');
}

const HEAD_FIELDS = new Set(['ts', 'level', 'event']);

/** An event this version does not know: its fields as `key=value`. */
function genericBody(r: Record<string, unknown>): string {
  return Object.entries(r)
    .filter(([k]) => !HEAD_FIELDS.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? quote(v) : (JSON.stringify(v) ?? 'undefined')}`)
    .join(' ');
}

/**
 * One line per record: local time, level, event, then the fields that matter, e.g.
 * `12:01:02.345 INFO  attempt  think-stream  openrouter-r1 ✗ rate_limit 429 312ms  "Rate limit exceeded"  [id #1]`.
 * Colours default to what stdout supports.
 */
export function formatRecord(r: LogRecord, c: ChalkInstance = defaultStdout()): string {
  const head = `${c.dim(formatTime(r.ts))} ${levelLabel(r.level, c)} ${c.bold(String(r.event).padEnd(8))} `;
  switch (r.event) {
    case 'attempt':
      return head + attemptBody(r, c);
    case 'request':
      return head + requestBody(r, c);
    case 'config':
      return head + configBody(r, c);
    case 'server':
      return head + serverBody(r, c);
    default:
      return head + genericBody(r as unknown as Record<string, unknown>);
  }
}

/**
 * The readable one-line summary of a request's failover chain, group first:
 * `think-stream  openrouter-r1 ✗ rate_limit 429 (312 ms) → chutes-r1 ✓ 1.8 s`.
 * Attempts are shown in `n` order with their own time; a request that did not
 * end well ends with ✗ and its class (the last failed attempt's, or
 * `stream_interrupted` / `failed` / `cancelled` when no attempt says so).
 * Colours default to what stderr supports (serve prints it there).
 */
export function formatChain(
  request: RequestRecord,
  attempts: readonly AttemptRecordLine[],
  c: ChalkInstance = defaultStderr(),
): string {
  const sorted = [...attempts].sort((a, b) => a.n - b.n);
  const steps = sorted.map((a) => {
    if (a.ok) return `${a.endpoint} ${ok(c)} ${formatDuration(a.ms)}`;
    const status = a.status !== null && a.status !== undefined ? ` ${a.status}` : '';
    return `${a.endpoint} ${bad(c)} ${c.yellow(a.class ?? 'unknown')}${status} ${c.dim(`(${formatDuration(a.ms)})`)}`;
  });
  const tail: string[] = [];
  if (steps.length > 0) tail.push(steps.join(c.dim(' → ')));
  const last = sorted.at(-1);
  if (request.outcome === 'ok') {
    if (!sorted.some((a) => a.ok)) tail.push(`${ok(c)} ${formatDuration(request.ms)}`);
  } else if (last === undefined || last.ok) {
    tail.push(`${bad(c)} ${c.yellow(OUTCOME_CLASS[request.outcome] ?? 'failed')}`);
  }
  return `${c.bold(str(request.group))}  ${tail.join(' ')}`;
}

/**
 * The `logs --request ID` view: a header, one line per attempt (n, endpoint,
 * ✓/✗, class, status, time, message), then the outcome line.
 */
export function formatRequestDetail(
  id: string,
  attempts: readonly AttemptRecordLine[],
  request: RequestRecord | null,
  c: ChalkInstance = defaultStdout(),
): string[] {
  const sorted = [...attempts].sort((a, b) => a.n - b.n);
  const first = request ?? sorted[0];
  const lines: string[] = [];
  const header = [`request ${c.bold(id)}`];
  if (first !== undefined) {
    header.push(c.bold(str(first.group)));
    if (request !== null) header.push(request.stream ? 'stream' : 'no stream', request.source);
    if (typeof request?.api === 'string') header.push(`via ${request.api}`);
    header.push(c.dim(formatDateTime(first.ts)));
  }
  lines.push(header.join('  '));

  const width = Math.max(0, ...sorted.map((a) => str(a.endpoint).length));
  for (const a of sorted) {
    const parts = [`  #${str(a.n)}`, str(a.endpoint).padEnd(width)];
    parts.push(a.ok ? ok(c) : `${bad(c)} ${c.yellow(str(a.class, 'unknown'))}`);
    if (a.status !== null && a.status !== undefined) parts.push(String(a.status));
    parts.push(formatDurationCompact(a.ms));
    if (typeof a.ttft_ms === 'number') parts.push(c.dim(`ttft ${formatDurationCompact(a.ttft_ms)}`));
    if (!a.ok && a.message !== null && a.message !== undefined && a.message !== '') parts.push(quote(a.message));
    lines.push(parts.join('  '));
  }

  if (request === null) {
    lines.push(c.dim('  → no request record (still running, or the process stopped before it ended)'));
    return lines;
  }
  const outcome =
    request.outcome === 'ok'
      ? `${ok(c)} ok`
      : `${bad(c)} ${c.yellow(OUTCOME_CLASS[request.outcome] ?? str(request.outcome))}`;
  const parts = [`  → ${outcome}`, `status ${str(request.status)}`];
  if (request.endpoint !== null && request.endpoint !== undefined) parts.push(`via ${request.endpoint}`);
  parts.push(`${str(request.attempts)} attempt${request.attempts === 1 ? '' : 's'}`, formatDurationCompact(request.ms));
  if (typeof request.ttft_ms === 'number') parts.push(`ttft ${formatDurationCompact(request.ttft_ms)}`);
  const u = request.usage;
  if (u !== null && u !== undefined && typeof u.total_tokens === 'number') {
    parts.push(`tokens ${u.prompt_tokens}+${u.completion_tokens}=${u.total_tokens}`);
  }
  if (typeof request.cost === 'number') parts.push(`cost ${formatCost(request.cost)}`);
  lines.push(parts.join('  '));
  return lines;
}

const ms = (v: number | null): string => (v === null ? '-' : formatDurationCompact(v));

function rateColor(rate: number, c: ChalkInstance): (s: string) => string {
  if (rate >= 0.95) return c.green;
  if (rate >= 0.5) return c.yellow;
  return c.red;
}

/**
 * The `logs --stats` table: one row per group and endpoint, then one outcome
 * line per group. Columns are aligned on the plain text, then coloured.
 */
export function formatStatsTable(
  endpoints: readonly EndpointStats[],
  groups: readonly GroupStats[],
  c: ChalkInstance = defaultStdout(),
): string[] {
  const header = ['GROUP', 'ENDPOINT', 'REQUESTS', 'SUCCESS', 'FAILURES', 'P50', 'P95', 'TTFT P50', 'TTFT P95'];
  const rows = endpoints.map((e) => [
    e.group,
    e.endpoint,
    String(e.requests),
    `${(e.success_rate * 100).toFixed(1)}%`,
    Object.entries(e.failures_by_class)
      .map(([k, v]) => `${k}:${v}`)
      .join(' ') || '-',
    ms(e.p50_ms),
    ms(e.p95_ms),
    ms(e.ttft_p50_ms),
    ms(e.ttft_p95_ms),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = new Set([2, 3, 5, 6, 7, 8]);
  const layout = (cells: string[]): string[] =>
    cells.map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)));

  const lines = [c.bold(layout(header).join('  ').trimEnd())];
  rows.forEach((row, idx) => {
    const e = endpoints[idx];
    const cells = layout(row);
    if (e !== undefined) {
      cells[0] = c.bold(cells[0] ?? '');
      cells[3] = rateColor(e.success_rate, c)(cells[3] ?? '');
      if (e.failures > 0) cells[4] = c.yellow(cells[4] ?? '');
    }
    lines.push(cells.join('  ').trimEnd());
  });

  if (groups.length > 0) {
    lines.push('');
    const gw = Math.max(...groups.map((g) => g.group.length));
    for (const g of groups) {
      const counts = [
        `${g.ok} ok`,
        g.failed > 0 ? c.red(`${g.failed} failed`) : `${g.failed} failed`,
        g.interrupted > 0 ? c.yellow(`${g.interrupted} interrupted`) : `${g.interrupted} interrupted`,
      ];
      if (g.cancelled > 0) counts.push(`${g.cancelled} cancelled`);
      lines.push(
        `${c.bold(g.group.padEnd(gw))}  ${g.requests} request${g.requests === 1 ? '' : 's'}: ${counts.join(', ')}` +
          c.dim(`  p50 ${ms(g.p50_ms)}  p95 ${ms(g.p95_ms)}`),
      );
    }
  }
  return lines;
}
