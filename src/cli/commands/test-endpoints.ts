/**
 * `failproxy test-endpoints` (SPEC §5): probes every endpoint (or those of the
 * groups named with `-g`) and prints a table, or the rows as JSON. On a
 * terminal the rows appear as the probes finish; in a pipe the whole table is
 * printed at the end in a stable order. Exit 1 when a tested group has no
 * working endpoint.
 */
import { Command } from 'commander';
import type { ChalkInstance } from 'chalk';
import { InterruptedError, UsageError, WorkFailedError } from '../../core/errors.js';
import type { Group } from '../../core/types.js';
import { colorsFor, formatDurationCompact } from '../../logging/pretty.js';
import { DEFAULT_PROBE_CONCURRENCY, probeEndpoints, type ProbeRow } from '../../probe/probe.js';
import { checkResume, RESUME_PARTIAL, type ResumeRow } from '../../probe/resume.js';
import { describeProblems, loadGroupsOrFail, parseIntOption, withCommonOptions } from '../common.js';

interface RawTestOptions {
  group: string[];
  json?: boolean;
  resume?: boolean;
  concurrency?: string;
  profiles?: string;
  logDir?: string;
}

interface TestOptions {
  groups: string[];
  json: boolean;
  resume: boolean;
  concurrency: number;
  profiles: string | undefined;
}

const collect = (value: string, previous: string[]): string[] => previous.concat(value);

export function testEndpointsCommand(): Command {
  return withCommonOptions(
    new Command('test-endpoints')
      .description('probe every endpoint with a minimal completion and report which work')
      .option('-g, --group <group>', 'only this group (repeatable)', collect, [])
      .option('--json', 'print the rows as a JSON array')
      .option('--resume', 'also check whether each working endpoint continues a prefilled answer (what to set as its prefill)')
      .option('--concurrency <n>', `probes in flight at once (default ${DEFAULT_PROBE_CONCURRENCY})`),
  ).action(async (raw: RawTestOptions) => testEndpoints(resolveOptions(raw)));
}

function resolveOptions(raw: RawTestOptions): TestOptions {
  return {
    groups: raw.group,
    json: raw.json === true,
    resume: raw.resume === true,
    concurrency: parseIntOption('--concurrency', raw.concurrency, 1) ?? DEFAULT_PROBE_CONCURRENCY,
    profiles: raw.profiles,
  };
}

async function testEndpoints(options: TestOptions): Promise<void> {
  const out = (text: string): void => void process.stdout.write(text);
  const err = (line: string): void => void process.stderr.write(`${line}\n`);
  const loaded = await loadGroupsOrFail(options.profiles);
  for (const line of describeProblems(loaded.problems)) err(line);
  const selected = selectGroups(loaded.groups, options.groups);

  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  const live = !options.json && process.stdout.isTTY === true;
  const colors = colorsFor('stdout');
  let rows: ProbeRow[];
  let resumeRows: ResumeRow[] | null = null;
  try {
    let onRow: ((row: ProbeRow) => void) | undefined;
    if (live) {
      const layout = layoutFor(selected, null);
      out(`${formatHeader(layout, colors)}\n`);
      onRow = (row) => out(`${formatRow(row, layout, colors)}\n`);
    }
    rows = await probeEndpoints(selected, {
      concurrency: options.concurrency,
      signal: controller.signal,
      ...(onRow ? { onRow } : {}),
    });
    if (options.resume && !controller.signal.aborted) {
      resumeRows = await checkResume(selected, rows, { concurrency: options.concurrency, signal: controller.signal });
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (controller.signal.aborted) throw new InterruptedError();

  if (options.json) {
    out(`${JSON.stringify(resumeRows ?? rows, null, 2)}\n`);
  } else {
    if (!live) {
      const exact = layoutFor(selected, rows);
      out(`${[formatHeader(exact, colors), ...rows.map((r) => formatRow(r, exact, colors))].join('\n')}\n`);
    }
    if (resumeRows) out(`\n${formatResumeTable(resumeRows, colors)}\n`);
    out(`\n${formatSummary(rows, colors)}\n`);
  }

  const dead = groupsWithoutWorkingEndpoint(selected, rows);
  if (dead.length > 0) {
    throw new WorkFailedError(`no working endpoint in ${dead.length === 1 ? 'group' : 'groups'} ${dead.join(', ')}`);
  }
}

function selectGroups(groups: Map<string, Group>, wanted: string[]): Group[] {
  const names = [...groups.keys()].sort();
  if (wanted.length === 0) return names.map((n) => groups.get(n)!);
  const unknown = wanted.filter((w) => !groups.has(w));
  if (unknown.length > 0) {
    const which = unknown.map((u) => `"${u}"`).join(', ');
    throw new UsageError(`unknown group ${which}; available groups: ${names.join(', ')}`);
  }
  return [...new Set(wanted)].sort().map((n) => groups.get(n)!);
}

/** Groups among `selected` where no endpoint answered. */
export function groupsWithoutWorkingEndpoint(selected: readonly Group[], rows: readonly ProbeRow[]): string[] {
  const working = new Set(rows.filter((r) => r.result === 'ok').map((r) => r.group));
  return selected.map((g) => g.name).filter((name) => !working.has(name));
}

// ---------------------------------------------------------------------------
// Table rendering.

interface Layout {
  group: number;
  endpoint: number;
  model: number;
  result: number;
}

const TIME_WIDTH = 7;
/** `stream_interrupted 503`: the widest result, so live rows never shift. */
const RESULT_WIDTH_LIVE = 22;

/**
 * Column widths. Names and models are known before probing; the result column
 * is fixed while rows are still coming (`rows` null) and exact once they are all in.
 */
function layoutFor(groups: readonly Group[], rows: readonly ProbeRow[] | null): Layout {
  let group = 'GROUP'.length;
  let endpoint = 'ENDPOINT'.length;
  let model = 'MODEL'.length;
  for (const g of groups) {
    group = Math.max(group, g.name.length);
    for (const e of g.endpoints) {
      endpoint = Math.max(endpoint, e.name.length);
      model = Math.max(model, e.model.length);
    }
    for (const s of g.skipped) endpoint = Math.max(endpoint, s.name.length);
  }
  const result = rows ? Math.max('RESULT'.length, ...rows.map((r) => resultText(r).length)) : RESULT_WIDTH_LIVE;
  return { group, endpoint, model, result };
}

function resultText(row: ProbeRow): string {
  return row.status !== null && row.result !== 'ok' ? `${row.result} ${row.status}` : row.result;
}

const ms = (value: number | null): string => (value === null ? '-' : formatDurationCompact(value));

function formatHeader(layout: Layout, c: ChalkInstance): string {
  return c.bold(
    [
      'GROUP'.padEnd(layout.group),
      'ENDPOINT'.padEnd(layout.endpoint),
      'MODEL'.padEnd(layout.model),
      'RESULT'.padEnd(layout.result),
      'LATENCY'.padStart(TIME_WIDTH),
      'TTFT'.padStart(TIME_WIDTH),
      'REASON',
    ].join('  '),
  );
}

/** One table line; padding is applied before colouring so columns line up. */
export function formatRow(row: ProbeRow, layout: Layout, c: ChalkInstance): string {
  const result = resultText(row).padEnd(layout.result);
  const paint =
    row.result === 'ok' ? c.green : row.result === 'skipped' || row.result === 'cancelled' ? c.yellow : c.red;
  return [
    row.group.padEnd(layout.group),
    row.endpoint.padEnd(layout.endpoint),
    c.dim((row.model ?? '-').padEnd(layout.model)),
    paint(result),
    ms(row.latency_ms).padStart(TIME_WIDTH),
    ms(row.ttft_ms).padStart(TIME_WIDTH),
    c.dim(row.reason),
  ]
    .join('  ')
    .trimEnd();
}

function formatSummary(rows: readonly ProbeRow[], c: ChalkInstance): string {
  const count = (pred: (r: ProbeRow) => boolean): number => rows.filter(pred).length;
  const ok = count((r) => r.result === 'ok');
  const skipped = count((r) => r.result === 'skipped');
  const failed = rows.length - ok - skipped;
  const parts = [c.green(`${ok} ok`), failed > 0 ? c.red(`${failed} failed`) : `${failed} failed`];
  if (skipped > 0) parts.push(c.yellow(`${skipped} skipped`));
  return `${rows.length} endpoint${rows.length === 1 ? '' : 's'}: ${parts.join(', ')}`;
}

// ---------------------------------------------------------------------------
// The resume check (`--resume`).

/** Today's setting, e.g. `true` or `false, type default`. */
function prefillNow(row: ResumeRow): string {
  return row.prefill === null ? '-' : `${row.prefill}${row.prefill_source === 'type' ? ', type default' : ''}`;
}

/** What to put in the profile, and whether that changes anything. */
function prefillAdvice(row: ResumeRow): string {
  if (row.resume === null) return '-';
  if (row.suggested_prefill === null) return `keep (now ${prefillNow(row)})`;
  const set = `prefill: ${row.suggested_prefill}`;
  return row.prefill_differs ? `set ${set} (now ${prefillNow(row)})` : `${set} (as now)`;
}

export function formatResumeTable(rows: readonly ResumeRow[], c: ChalkInstance): string {
  const cells = rows.map((r) => [r.group, r.endpoint, r.resume ?? '-', prefillAdvice(r), r.resume_answer]);
  const head = ['GROUP', 'ENDPOINT', 'RESUME', 'PROFILE', 'ANSWER'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: string[]): string => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell)).join('  ');
  const paint = (row: ResumeRow): ChalkInstance =>
    row.resume === 'continues' ? c.green : row.resume === 'restarts' || row.resume === 'rejected' ? c.yellow : row.resume === 'unclear' ? c.red : c.dim;
  const lines = rows.map((row, i) => {
    const text = line(cells[i]!);
    return row.prefill_differs ? c.bold(paint(row)(text)) : paint(row)(text);
  });
  const title = `Resume: does each endpoint continue the prefilled answer "${RESUME_PARTIAL}" of a count to 30?`;
  const changes = rows.filter((r) => r.prefill_differs).length;
  const footer = changes === 0 ? 'No profile needs a change.' : `${changes} endpoint${changes === 1 ? '' : 's'} should change prefill (PROFILE column).`;
  return [title, c.bold(line(head)), ...lines, footer].join('\n').replace(/ +$/gm, '');
}
