/**
 * The JSONL log writer (SPEC §6): one JSON object per line, appended to
 * `<dir>/YYYY-MM-DD.jsonl` where the day is the local date.
 *
 * It sits on the proxy's hot path, so a line costs one `JSON.stringify` and one
 * buffered `write` on a stream that stays open for the whole day (fs.WriteStream
 * batches lines that queue up behind a pending write into one `writev`). The
 * only synchronous fs call is the `mkdir` when a day's file is opened. Logging
 * never throws into the caller: failures go to `onError` once, then records are
 * dropped until the next day's file is tried.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { levelEnabled } from './level.js';
import type { LogLevel, LogRecord } from './types.js';

type WithoutStamp<T> = T extends unknown ? Omit<T, 'ts' | 'level'> : never;

/** A record as callers hand it to the logger: the writer adds `ts` and `level`. */
export type LogRecordInput = WithoutStamp<LogRecord>;

export interface JsonlLoggerOptions {
  dir: string;
  /** Records below this level are dropped. */
  level: LogLevel;
  /** Clock, for tests. */
  now?: () => Date;
  /** Told about the first failure (unwritable directory, full disk, unserializable record). */
  onError?: (err: Error) => void;
  /**
   * Bytes the stream may hold unwritten before new records are dropped, so a
   * stalled disk cannot grow the process without bound. Default 64 MiB.
   */
  maxBufferBytes?: number;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** The local date of `date` as `YYYY-MM-DD` (the log file's day). */
export function localDateString(date: Date): string {
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())}`;
}

/** The log file holding the records of `date`'s local day. */
export function logFileFor(dir: string, date: Date): string {
  return path.join(dir, `${localDateString(date)}.jsonl`);
}

/** Batched lines are written at the latest this long after the first of them… */
const FLUSH_MS = 20;
/** …or as soon as this many characters are waiting. */
const FLUSH_BYTES = 64 * 1024;

export class JsonlLogger {
  readonly dir: string;
  readonly level: LogLevel;
  /** Records that passed the level but could not be written. */
  dropped = 0;

  readonly #now: () => Date;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #maxBuffer: number;
  #stream: WriteStream | null = null;
  /** [start, end) in epoch ms of the local day the open file (or the failed attempt) belongs to. */
  #dayStart = 0;
  #dayEnd = 0;
  #reported = false;
  #overflowReported = false;
  #closed = false;
  readonly #closing = new Set<Promise<void>>();
  /**
   * Lines not yet handed to the stream, already encoded. A write per line is
   * a syscall per line on the threadpool, which shares the proxy's core;
   * batching for a few milliseconds makes that one write per batch. They wait
   * as bytes outside the JavaScript heap, not as a string: a string built up
   * over 20 ms outlives two scavenges and is copied into the old generation,
   * whose collection is what a proxy's CPU went to (bench ns-c16, #18).
   */
  #batch: Buffer | null = null;
  #batched = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  /** The last line's time and its ISO form: lines of one millisecond share it. */
  #stampMs = NaN;
  #stamp = '';

  constructor(opts: JsonlLoggerOptions) {
    this.dir = opts.dir;
    this.level = opts.level;
    this.#now = opts.now ?? (() => new Date());
    this.#onError = opts.onError;
    this.#maxBuffer = opts.maxBufferBytes ?? 64 * 1024 * 1024;
  }

  /** Whether a record at `level` would be written (lets callers skip building it). */
  enabled(level: LogLevel): boolean {
    return !this.#closed && levelEnabled(this.level, level);
  }

  log(level: LogLevel, record: LogRecordInput): void {
    if (!this.enabled(level)) return;
    try {
      const date = this.#now();
      const t = date.getTime();
      // Two number comparisons per line; the clock may also jump backwards.
      if (t >= this.#dayEnd || t < this.#dayStart) this.#openDay(date);
      const stream = this.#stream;
      if (stream === null) {
        this.dropped++;
        return;
      }
      if (stream.writableLength > this.#maxBuffer) {
        this.dropped++;
        if (!this.#overflowReported) {
          this.#overflowReported = true;
          this.#report(new Error(`log writer is behind on ${stream.path.toString()}; dropping records`));
        }
        return;
      }
      // The record's own JSON with ts and level spliced in front: no object copy per line.
      if (t !== this.#stampMs) {
        this.#stampMs = t;
        this.#stamp = date.toISOString();
      }
      const body = JSON.stringify(record);
      this.#append(`{"ts":"${this.#stamp}","level":"${level}"${body.length > 2 ? ',' : ''}${body.slice(1)}\n`);
    } catch (err) {
      this.dropped++;
      this.#report(err);
    }
  }

  /** Write what is batched now (tests and `close` want it on disk). */
  flush(): void {
    this.#flush();
  }

  /** Encode `line` into the batch; a line bigger than a batch goes out on its own. */
  #append(line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: count exactly only when that bound does not fit.
    const room = FLUSH_BYTES - this.#batched;
    if (line.length * 3 > room && Buffer.byteLength(line) > room) {
      this.#flush();
      if (Buffer.byteLength(line) > FLUSH_BYTES) {
        this.#stream?.write(line);
        return;
      }
    }
    // A new batch per flush: the stream holds the last one until its write is done.
    this.#batch ??= Buffer.allocUnsafeSlow(FLUSH_BYTES);
    this.#batched += this.#batch.write(line, this.#batched);
    this.#flushTimer ??= setTimeout(() => this.#flush(), FLUSH_MS).unref();
  }

  #flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const batch = this.#batch;
    if (batch === null || this.#batched === 0) return;
    const bytes = batch.subarray(0, this.#batched);
    this.#batch = null;
    this.#batched = 0;
    this.#stream?.write(bytes);
  }

  /** Flushes and closes the open file. Later records are dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#flush();
    this.#endStream();
    await Promise.all([...this.#closing]);
  }

  #openDay(date: Date): void {
    const y = date.getFullYear();
    const m = date.getMonth();
    const d = date.getDate();
    // Built from local calendar fields, so DST days (23 or 25 hours) come out right.
    this.#dayStart = new Date(y, m, d).getTime();
    this.#dayEnd = new Date(y, m, d + 1).getTime();
    // Lines batched for the old day go to the old day's file.
    this.#flush();
    this.#endStream();
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      this.#report(err);
      return;
    }
    const stream = createWriteStream(logFileFor(this.dir, date), { flags: 'a' });
    stream.on('error', (err) => {
      this.#report(err);
      if (this.#stream === stream) this.#stream = null;
      stream.destroy();
    });
    this.#overflowReported = false;
    this.#stream = stream;
  }

  #endStream(): void {
    const stream = this.#stream;
    if (stream === null) return;
    this.#stream = null;
    const done = new Promise<void>((resolve) => {
      if (stream.closed) resolve();
      else stream.once('close', () => resolve());
    });
    this.#closing.add(done);
    void done.then(() => this.#closing.delete(done));
    stream.end();
  }

  #report(err: unknown): void {
    if (this.#reported) return;
    this.#reported = true;
    try {
      this.#onError?.(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // The callback's own failure must not reach the request path either.
    }
  }
}
