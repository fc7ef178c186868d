/**
 * `failproxy logs` (SPEC §5, §6): reads, follows, filters and summarizes the
 * JSONL logs. Results go to stdout, diagnostics (missing file, skipped lines)
 * to stderr; nothing here ends the process.
 */
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { UsageError, WorkFailedError } from '../../core/errors.js';
import { isLogLevel, levelEnabled } from '../../logging/level.js';
import { colorsFor, formatRecord, formatRequestDetail, formatStatsTable } from '../../logging/pretty.js';
import {
  followLogs,
  isNotFound,
  listLogDates,
  localDateString,
  logFileFor,
  scanLogFile,
} from '../../logging/reader.js';
import { computeGroupStats, computeStats } from '../../logging/stats.js';
import { captureFile } from '../../server/capture.js';
import { resolveCaptureDir } from '../common.js';
import { computeUsage, formatUsageTable, parseSince, USAGE_BY, type UsageBy } from '../../logging/usage-stats.js';
import type { AttemptRecordLine, LogLevel, LogRecord, RequestRecord } from '../../logging/types.js';

interface Output {
  write(text: string): unknown;
}

/** Seams for tests; the CLI uses the defaults. */
export interface LogsCommandDeps {
  stdout?: Output;
  stderr?: Output;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
  /** Also stops `-f` (besides SIGINT / SIGTERM). */
  signal?: AbortSignal;
  pollMs?: number;
}

interface RawLogsOptions {
  date?: string;
  lines?: string;
  follow?: boolean;
  group?: string;
  endpoint?: string;
  level?: string;
  request?: string;
  stats?: boolean;
  capture?: string;
  since?: string;
  by?: string;
  json?: boolean;
  logDir?: string;
}

interface LogsOptions {
  dir: string;
  /** The day to read (local); `dateGiven` tells whether the user chose it. */
  day: Date;
  dateGiven: boolean;
  lines: number;
  follow: boolean;
  group: string | undefined;
  endpoint: string | undefined;
  level: LogLevel | undefined;
  request: string | undefined;
  stats: boolean;
  /** `--stats` over every record from this moment on (several days' files). */
  since: Date | undefined;
  by: UsageBy;
  json: boolean;
}

const DEFAULT_LINES = 50;

function parseDate(value: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (m !== null) {
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const date = new Date(y, mo - 1, d);
    if (date.getFullYear() === y && date.getMonth() === mo - 1 && date.getDate() === d) return date;
  }
  throw new UsageError(`invalid --date "${value}": expected a day as YYYY-MM-DD`);
}

function parseLines(value: string): number {
  if (!/^\d+$/.test(value.trim())) {
    throw new UsageError(`invalid -n "${value}": expected a whole number of records (0 or more)`);
  }
  return Number(value.trim());
}

function normalizeOptions(raw: RawLogsOptions, env: NodeJS.ProcessEnv, now: Date): LogsOptions {
  let level: LogLevel | undefined;
  if (raw.level !== undefined) {
    const l = raw.level.trim().toLowerCase();
    if (!isLogLevel(l)) throw new UsageError(`invalid --level "${raw.level}": expected debug, info, warn or error`);
    level = l;
  }
  const day = raw.date !== undefined ? parseDate(raw.date) : now;
  const opts: LogsOptions = {
    dir: raw.logDir ?? (env.FAILPROXY_LOG_DIR || undefined) ?? './logs',
    day,
    dateGiven: raw.date !== undefined,
    lines: raw.lines !== undefined ? parseLines(raw.lines) : DEFAULT_LINES,
    follow: raw.follow === true,
    group: raw.group,
    endpoint: raw.endpoint,
    level,
    request: raw.request,
    stats: raw.stats === true,
    since: undefined,
    by: 'group',
    json: raw.json === true,
  };
  if (raw.since !== undefined) {
    opts.since = parseSince(raw.since, now) ?? undefined;
    if (opts.since === undefined) throw new UsageError(`invalid --since "${raw.since}": expected 90m, 12h, 7d or a day as YYYY-MM-DD`);
    if (opts.dateGiven) throw new UsageError('--since cannot be combined with --date');
  }
  if (raw.by !== undefined) {
    if (!(USAGE_BY as readonly string[]).includes(raw.by)) throw new UsageError(`invalid --by "${raw.by}": expected group, endpoint or day`);
    opts.by = raw.by as UsageBy;
  }
  if ((opts.since !== undefined || raw.by !== undefined) && !opts.stats) throw new UsageError('--since and --by go with --stats');
  if (opts.follow && opts.stats) throw new UsageError('-f cannot be combined with --stats');
  if (opts.follow && opts.request !== undefined) throw new UsageError('-f cannot be combined with --request');
  if (opts.follow && opts.dateGiven && localDateString(day) !== localDateString(now)) {
    throw new UsageError("-f follows today's log; leave out --date or give today's date");
  }
  return opts;
}

function matcher(opts: LogsOptions): (r: LogRecord) => boolean {
  const { group, endpoint, level } = opts;
  return (r) => {
    const fields = r as unknown as Record<string, unknown>;
    if (group !== undefined && fields.group !== group) return false;
    if (endpoint !== undefined && fields.endpoint !== endpoint) return false;
    if (level !== undefined && !levelEnabled(level, r.level)) return false;
    return true;
  };
}

/** Keeps the last `size` items pushed. */
class Ring<T> {
  readonly #items: T[] = [];
  #next = 0;
  constructor(readonly size: number) {}
  push(item: T): void {
    if (this.size === 0) return;
    if (this.#items.length < this.size) this.#items.push(item);
    else this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.size;
  }
  toArray(): T[] {
    if (this.#items.length < this.size) return [...this.#items];
    return [...this.#items.slice(this.#next), ...this.#items.slice(0, this.#next)];
  }
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

type RunDeps = Required<Pick<LogsCommandDeps, 'stdout' | 'stderr' | 'env' | 'now'>> & LogsCommandDeps;

class LogsRun {
  readonly #opts: LogsOptions;
  readonly #deps: RunDeps;
  readonly #matches: (r: LogRecord) => boolean;

  readonly #capture: string | undefined;

  constructor(opts: LogsOptions, deps: RunDeps, capture?: string) {
    this.#capture = capture;
    this.#opts = opts;
    this.#deps = deps;
    this.#matches = matcher(opts);
  }

  #out(lines: string[]): void {
    if (lines.length > 0) this.#deps.stdout.write(lines.join('\n') + '\n');
  }

  #note(text: string): void {
    this.#deps.stderr.write(text + '\n');
  }

  #noteSkipped(n: number, file: string): void {
    if (n > 0) this.#note(`skipped ${plural(n, 'unreadable line')} in ${file}`);
  }

  #colors(): ReturnType<typeof colorsFor> {
    return colorsFor('stdout', this.#deps.env);
  }

  async run(): Promise<void> {
    if (this.#opts.request !== undefined) return this.#showRequest(this.#opts.request);
    if (this.#opts.stats) return this.#showStats();
    return this.#showRecords();
  }

  /** Scans one day's file; false (with a note) when it does not exist. */
  async #scan(
    file: string,
    onRecord: (r: LogRecord) => void,
    completeLinesOnly = false,
  ): Promise<{ found: boolean; offset: number }> {
    try {
      const { skipped, offset } = await scanLogFile(file, onRecord, { completeLinesOnly });
      this.#noteSkipped(skipped, file);
      return { found: true, offset };
    } catch (err) {
      if (isNotFound(err)) return { found: false, offset: 0 };
      throw err;
    }
  }

  async #showRecords(): Promise<void> {
    const opts = this.#opts;
    const file = logFileFor(opts.dir, opts.day);
    const ring = new Ring<LogRecord>(opts.lines);
    const { found, offset } = await this.#scan(
      file,
      (r) => {
        if (this.#matches(r)) ring.push(r);
      },
      opts.follow,
    );
    if (!found) {
      this.#note(
        opts.follow
          ? `no log file yet for ${localDateString(opts.day)} (${file}); waiting for records`
          : `no log file for ${localDateString(opts.day)} (${file})`,
      );
      if (!opts.follow) return;
    }
    const records = ring.toArray();
    const c = this.#colors();
    if (opts.json && !opts.follow) {
      this.#deps.stdout.write(JSON.stringify(records, null, 2) + '\n');
      return;
    }
    // Following prints JSON Lines with --json: an array could never be closed.
    const render = opts.json ? (r: LogRecord) => JSON.stringify(r) : (r: LogRecord) => formatRecord(r, c);
    this.#out(records.map(render));
    if (opts.follow) await this.#follow(found ? offset : 0, render);
  }

  async #follow(startOffset: number, render: (r: LogRecord) => string): Promise<void> {
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // `logs -f | head`: a closed pipe ends following instead of crashing.
    process.stdout.once('error', stop);
    this.#deps.signal?.addEventListener('abort', stop, { once: true });
    if (this.#deps.signal?.aborted === true) stop();
    try {
      await followLogs(this.#opts.dir, {
        signal: controller.signal,
        fromEnd: true,
        startOffset,
        now: this.#deps.now,
        ...(this.#deps.pollMs !== undefined ? { pollMs: this.#deps.pollMs } : {}),
        onRecord: (r) => {
          if (this.#matches(r)) this.#deps.stdout.write(render(r) + '\n');
        },
        onSkipped: (n) => this.#note(`skipped ${plural(n, 'unreadable line')}`),
      });
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stdout.off('error', stop);
      this.#deps.signal?.removeEventListener('abort', stop);
    }
  }

  async #showStats(): Promise<void> {
    const opts = this.#opts;
    const since = opts.since;
    const days = since === undefined ? [localDateString(opts.day)] : (await listLogDates(opts.dir)).filter((d) => d >= localDateString(since));
    const records: LogRecord[] = [];
    let found = 0;
    for (const day of days) {
      const file = logFileFor(opts.dir, parseDate(day));
      const scanned = await this.#scan(file, (r) => {
        if (r.event !== 'attempt' && r.event !== 'request') return;
        if (since !== undefined && !(Date.parse(r.ts) >= since.getTime())) return;
        if (this.#matches(r)) records.push(r);
      });
      if (scanned.found) found++;
    }
    const where = since === undefined ? logFileFor(opts.dir, opts.day) : `${opts.dir} since ${since.toISOString()}`;
    if (found === 0) {
      this.#note(since === undefined ? `no log file for ${localDateString(opts.day)} (${where})` : `no log files in ${where}`);
      return;
    }
    const endpoints = computeStats(records);
    const groups = computeGroupStats(records);
    const usage = computeUsage(records, opts.by);
    if (opts.json) {
      this.#deps.stdout.write(JSON.stringify({ endpoints, groups, usage }, null, 2) + '\n');
      return;
    }
    if (endpoints.length === 0 && groups.length === 0) {
      this.#note(`no attempts or requests in ${where}`);
      return;
    }
    const c = this.#colors();
    this.#out([...formatStatsTable(endpoints, groups, c), ...(usage.length > 0 ? ['', ...formatUsageTable(usage, opts.by, c)] : [])]);
  }

  /** The days to search for a request: the chosen one, or today and then older days, newest first. */
  async #requestDays(): Promise<string[]> {
    const opts = this.#opts;
    const today = localDateString(opts.day);
    if (opts.dateGiven) return [today];
    const older = (await listLogDates(opts.dir)).filter((d) => d < today).reverse();
    return [today, ...older];
  }

  async #showRequest(id: string): Promise<void> {
    const opts = this.#opts;
    const days = await this.#requestDays();
    let searched = 0;
    for (const day of days) {
      const file = logFileFor(opts.dir, parseDate(day));
      const attempts: AttemptRecordLine[] = [];
      let request: RequestRecord | null = null;
      const { found } = await this.#scan(file, (r) => {
        if (r.event === 'attempt' && r.id === id) attempts.push(r);
        else if (r.event === 'request' && r.id === id) request = r;
      });
      if (!found) continue;
      searched++;
      if (attempts.length === 0 && request === null) continue;
      attempts.sort((a, b) => a.n - b.n);
      if (opts.json) {
        const chain: LogRecord[] = [...attempts];
        if (request !== null) chain.push(request);
        this.#deps.stdout.write(JSON.stringify(chain, null, 2) + '\n');
      } else {
        this.#out(formatRequestDetail(id, attempts, request, this.#colors()));
        const dir = resolveCaptureDir(this.#capture, this.#deps.env);
        const file = captureFile(dir, id);
        const found = file !== null && existsSync(file);
        this.#out([found ? `  capture: ${file} (failproxy replay ${id})` : `  no capture in ${dir}`]);
      }
      return;
    }
    if (searched === 0) {
      const what = opts.dateGiven ? `for ${days[0] ?? ''}` : 'yet';
      this.#note(`no log file ${what} in ${opts.dir}`);
      return;
    }
    const where = opts.dateGiven ? logFileFor(opts.dir, opts.day) : `the logs in ${opts.dir}`;
    throw new WorkFailedError(`no request "${id}" in ${where}`);
  }
}

export function logsCommand(deps: LogsCommandDeps = {}): Command {
  return new Command('logs')
    .description("read, follow, filter and summarize the proxy's logs (default: today's last 50 records)")
    .option('--date <YYYY-MM-DD>', 'the day to read (local date; default today)')
    .option('-n, --lines <N>', `show the last N matching records (default ${DEFAULT_LINES})`)
    .option('-f, --follow', 'keep printing new records until Ctrl-C')
    .option('--group <G>', 'only records of this group')
    .option('--endpoint <E>', 'only records of this endpoint')
    .option('--level <L>', 'only records at this level or above (debug, info, warn, error)')
    .option('--request <ID>', "show one request's failover chain")
    .option('--capture <DIR>', 'with --request: where serve --capture saved requests (default $FAILPROXY_CAPTURE_DIR or ./captures)')
    .option('--stats', 'per endpoint: requests, success rate, failures by class, p50/p95 latency and ttft; tokens and cost')
    .option('--since <WHEN>', 'with --stats: from 90m, 12h, 7d ago or a day YYYY-MM-DD until now (several days)')
    .option('--by <KEY>', 'with --stats: sum tokens and cost by group, endpoint or day (default group)')
    .option('--json', 'print records (or stats) as JSON; JSON Lines with -f')
    .option('--log-dir <DIR>', 'log directory (default $FAILPROXY_LOG_DIR or ./logs)')
    .option('--profiles <DIR>', 'profiles directory (not used by this command)')
    .action(async (_options: RawLogsOptions, command: Command) => {
      const env = deps.env ?? process.env;
      const now = deps.now ?? (() => new Date());
      const raw = command.optsWithGlobals<RawLogsOptions>();
      const opts = normalizeOptions(raw, env, now());
      await new LogsRun(opts, {
        ...deps,
        stdout: deps.stdout ?? process.stdout,
        stderr: deps.stderr ?? process.stderr,
        env,
        now,
      }, raw.capture).run();
    });
}
