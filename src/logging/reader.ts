/**
 * The tolerant log reader: a log written by a process that crashed, ran out of
 * disk or is still writing has torn and half-written lines, and reading it must
 * still show everything that can be read.
 */
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isLogLevel } from './level.js';
import type { LogRecord } from './types.js';
import { localDateString, logFileFor } from './writer.js';

export { localDateString, logFileFor };

export interface ReadResult {
  records: LogRecord[];
  /** Lines that could not be read as a record (torn, not JSON, no `event` or `ts`). */
  skipped: number;
}

/** Longest line kept while waiting for its newline; a longer one is dropped as unreadable. */
const MAX_LINE_BYTES = 32 * 1024 * 1024;
const NEWLINE = 0x0a;
/** Every line the writer emits starts like this, which lets a torn line be recovered. */
const RECORD_START = '{"ts":';

/** Whether an fs error means "no such file or directory". */
export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

function toRecord(value: unknown): LogRecord | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const obj = value as Record<string, unknown>;
  if (typeof obj.event !== 'string' || typeof obj.ts !== 'string') return null;
  if (!isLogLevel(obj.level)) obj.level = 'info';
  return obj as unknown as LogRecord;
}

function tryParse(text: string): LogRecord | null {
  try {
    return toRecord(JSON.parse(text));
  } catch {
    return null;
  }
}

/**
 * Parses one line. Blank lines are ignored without being counted. A line that
 * is not a record counts as one skipped line — unless a whole record follows
 * the tear (a crashed writer's half line, then the next process's first line),
 * in which case that record is kept and the torn head counts as skipped.
 */
export function parseLogLine(line: string): { record: LogRecord | null; skipped: number } {
  const text = line.trim();
  if (text === '') return { record: null, skipped: 0 };
  const record = tryParse(text);
  if (record !== null) return { record, skipped: 0 };
  const tail = text.lastIndexOf(RECORD_START);
  if (tail > 0) {
    const recovered = tryParse(text.slice(tail));
    if (recovered !== null) return { record: recovered, skipped: 1 };
  }
  return { record: null, skipped: 1 };
}

/** Splits bytes into lines on `\n`; a line is decoded only once it is whole (UTF-8 safe). */
class LineSplitter {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Dropping an over-long line until its newline arrives. */
  #discarding = false;

  /** Calls `onLine` for each complete line; returns how many over-long lines were dropped. */
  push(chunk: Buffer, onLine: (line: string) => void): number {
    let dropped = 0;
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      if (this.#discarding) {
        this.#discarding = false;
      } else if (this.#pendingBytes > 0) {
        this.#pending.push(chunk.subarray(start, nl));
        const line = Buffer.concat(this.#pending).toString('utf8');
        this.reset();
        onLine(line);
      } else {
        onLine(chunk.toString('utf8', start, nl));
      }
      start = nl + 1;
    }
    if (start < chunk.length && !this.#discarding) {
      this.#pending.push(chunk.subarray(start));
      this.#pendingBytes += chunk.length - start;
      if (this.#pendingBytes > MAX_LINE_BYTES) {
        this.reset();
        this.#discarding = true;
        dropped++;
      }
    }
    return dropped;
  }

  /** Bytes received after the last newline. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** The unterminated rest, if any. */
  rest(): string | null {
    return this.#pendingBytes > 0 ? Buffer.concat(this.#pending).toString('utf8') : null;
  }

  reset(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#discarding = false;
  }
}

export interface ScanOptions {
  /**
   * Leave an unterminated last line alone (a writer may be in the middle of it),
   * so `offset` can be handed to `followLogs` as `startOffset`. Default false:
   * the last line is read if it parses and counted as skipped if not.
   */
  completeLinesOnly?: boolean;
}

/**
 * Streams a log file, calling `onRecord` for every readable record in file order
 * without holding the file in memory. Rejects with the fs error (ENOENT when the
 * file does not exist; see `isNotFound`). `offset` is the byte position after
 * the last line consumed.
 */
export async function scanLogFile(
  file: string,
  onRecord: (record: LogRecord) => void,
  opts: ScanOptions = {},
): Promise<{ skipped: number; offset: number }> {
  const splitter = new LineSplitter();
  let skipped = 0;
  let bytes = 0;
  const onLine = (line: string): void => {
    const parsed = parseLogLine(line);
    skipped += parsed.skipped;
    if (parsed.record !== null) onRecord(parsed.record);
  };
  const stream = createReadStream(file, { highWaterMark: 256 * 1024 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    // Not `skipped += push(...)`: onLine updates `skipped` during the call.
    const dropped = splitter.push(chunk, onLine);
    skipped += dropped;
  }
  let offset = bytes - splitter.pendingBytes;
  const rest = splitter.rest();
  if (rest !== null && opts.completeLinesOnly !== true) {
    onLine(rest);
    offset = bytes;
  }
  return { skipped, offset };
}

/** Reads a whole log file. Rejects with the fs error when it cannot be read (ENOENT: missing). */
export async function readLogFile(file: string): Promise<ReadResult> {
  const records: LogRecord[] = [];
  const { skipped } = await scanLogFile(file, (r) => records.push(r));
  return { records, skipped };
}

const LOG_FILE_NAME = /^(\d{4}-\d{2}-\d{2})\.jsonl$/;

/** The days (`YYYY-MM-DD`, ascending) that have a log file in `dir`; [] when `dir` is missing. */
export async function listLogDates(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const dates: string[] = [];
  for (const name of names) {
    const m = LOG_FILE_NAME.exec(name);
    if (m?.[1] !== undefined) dates.push(m[1]);
  }
  return dates.sort();
}

export interface FollowOptions {
  /** Following stops (and the promise resolves) when this aborts. */
  signal: AbortSignal;
  /** Start at the end of today's file (only new records); false: from its beginning. */
  fromEnd: boolean;
  /** Start at this byte offset of today's file instead (e.g. `scanLogFile`'s `offset`). */
  startOffset?: number;
  onRecord(record: LogRecord): void;
  onSkipped?(count: number): void;
  /** Clock deciding the local day, for tests. */
  now?: () => Date;
  /** Poll interval; default 250 ms. */
  pollMs?: number;
  /**
   * How long the previous day's file is still read after the local date changes,
   * for lines the writer flushes late; default max(2 s, 4 polls).
   */
  drainMs?: number;
}

/** One followed file: reads what was appended since the last poll, whole lines only. */
class FileTail {
  readonly file: string;
  offset: number;
  #ino: number | null = null;
  readonly #splitter = new LineSplitter();

  constructor(file: string, offset: number) {
    this.file = file;
    this.offset = offset;
  }

  async poll(onLine: (line: string) => void, onDropped: (n: number) => void): Promise<void> {
    try {
      const st = await stat(this.file);
      // Replaced or truncated: start over on the new content.
      if ((this.#ino !== null && st.ino !== this.#ino) || st.size < this.offset) {
        this.offset = 0;
        this.#splitter.reset();
      }
      this.#ino = st.ino;
      if (st.size <= this.offset) return;
      const fh = await open(this.file, 'r');
      try {
        while (this.offset < st.size) {
          const length = Math.min(st.size - this.offset, 1024 * 1024);
          const buf = Buffer.allocUnsafe(length);
          const { bytesRead } = await fh.read(buf, 0, length, this.offset);
          if (bytesRead === 0) break;
          this.offset += bytesRead;
          const dropped = this.#splitter.push(buf.subarray(0, bytesRead), onLine);
          if (dropped > 0) onDropped(dropped);
        }
      } finally {
        await fh.close();
      }
    } catch (err) {
      // A missing file is simply not written yet; other errors (a file removed
      // between stat and open, a transient EIO) are retried on the next poll.
      if (!isNotFound(err) && !isTransient(err)) throw err;
    }
  }
}

function isTransient(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'EIO' || code === 'EAGAIN' || code === 'EBUSY' || code === 'EMFILE' || code === 'ENFILE';
}

/** The offset just after the last newline of `file` (0 when missing or without one). */
async function endOfLastLine(file: string): Promise<number> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if (isNotFound(err)) return 0;
    throw err;
  }
  try {
    const { size } = await fh.stat();
    const block = 64 * 1024;
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - block);
      const buf = Buffer.alloc(end - start);
      await fh.read(buf, 0, buf.length, start);
      const nl = buf.lastIndexOf(NEWLINE);
      if (nl !== -1) return start + nl + 1;
      end = start;
    }
    return 0;
  } finally {
    await fh.close();
  }
}

/**
 * Follows the log: today's file (local date) by polling `stat` and reading from
 * the last offset, consuming only up to the last newline so a line written in
 * pieces is read once it is whole. When the local date changes it moves on to
 * the new day's file (which may not exist yet), reading the old one for a short
 * drain period so late lines are not lost. Resolves when `signal` aborts.
 */
export async function followLogs(dir: string, opts: FollowOptions): Promise<void> {
  const { signal } = opts;
  const now = opts.now ?? (() => new Date());
  const pollMs = opts.pollMs ?? 250;
  const drainMs = opts.drainMs ?? Math.max(2000, 4 * pollMs);

  const onLine = (line: string): void => {
    if (signal.aborted) return;
    const parsed = parseLogLine(line);
    if (parsed.skipped > 0) opts.onSkipped?.(parsed.skipped);
    if (parsed.record !== null) opts.onRecord(parsed.record);
  };
  const onDropped = (n: number): void => opts.onSkipped?.(n);

  const start = now();
  let day = localDateString(start);
  const firstFile = logFileFor(dir, start);
  const firstOffset = opts.startOffset ?? (opts.fromEnd ? await endOfLastLine(firstFile) : 0);
  let current = new FileTail(firstFile, firstOffset);
  let previous: { tail: FileTail; until: number } | null = null;

  while (!signal.aborted) {
    if (previous !== null) {
      await previous.tail.poll(onLine, onDropped);
      if (performance.now() >= previous.until) previous = null;
    }
    await current.poll(onLine, onDropped);
    const date = now();
    const today = localDateString(date);
    if (today !== day) {
      day = today;
      previous = { tail: current, until: performance.now() + drainMs };
      current = new FileTail(logFileFor(dir, date), 0);
      continue;
    }
    try {
      await sleep(pollMs, undefined, { signal });
    } catch {
      return;
    }
  }
}
