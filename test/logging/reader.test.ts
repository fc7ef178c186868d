import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  followLogs,
  listLogDates,
  logFileFor,
  parseLogLine,
  readLogFile,
  scanLogFile,
} from '../../src/logging/reader.js';
import type { LogRecord } from '../../src/logging/types.js';
import { makeLogDir, OTHER_DAY, STATS_DAY, STATS_DAY_RECORDS, STATS_DAY_SKIPPED, waitFor } from './fixtures.js';

const rec = (message: string, ts = '2025-03-14T10:00:00.000Z'): string =>
  JSON.stringify({ ts, level: 'info', event: 'server', action: 'start', message });

test('reads two days and lists them; skips torn and non-record lines', async (t) => {
  const { dir, cleanup } = await makeLogDir();
  t.after(cleanup);
  assert.deepEqual(await listLogDates(dir), [OTHER_DAY, STATS_DAY]);
  assert.deepEqual(await listLogDates(path.join(dir, 'missing')), []);

  const day = await readLogFile(path.join(dir, `${STATS_DAY}.jsonl`));
  assert.equal(day.records.length, STATS_DAY_RECORDS);
  assert.equal(day.skipped, STATS_DAY_SKIPPED);
  assert.equal(day.records[0]?.event, 'server');

  const other = await readLogFile(logFileFor(dir, new Date(2025, 2, 13)));
  assert.equal(other.records.length, 3);
  assert.equal(other.skipped, 0);

  await assert.rejects(readLogFile(path.join(dir, '1999-01-01.jsonl')), { code: 'ENOENT' });
});

test('tolerates every kind of bad line', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failproxy-reader-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'x.jsonl');
  const content = [
    rec('one'),
    // a torn head followed by a whole record on the same line: the record is kept
    `{"ts":"2025-03-14T10:00:01.000Z","lev${rec('two')}`,
    '',
    '   ',
    'not json',
    '{"level":"info","message":"no event"}',
    '{"ts":"2025-03-14T10:00:02.000Z","event":7}',
    '[1,2]',
    'null',
    '{"ts":"2025-03-14T10:00:03.000Z","event":"server","action":"stop","message":"no level"}\r',
    '{"ts":"2025-03-14T10:00:04.000Z","level":"info","eve', // torn last line, no newline
  ].join('\n');
  await writeFile(file, content);
  const { records, skipped } = await readLogFile(file);
  assert.deepEqual(
    records.map((r) => (r as { message?: string }).message),
    ['one', 'two', 'no level'],
  );
  assert.equal(records[2]?.level, 'info', 'a missing level reads as info');
  assert.equal(skipped, 7);

  // For following, an unterminated last line is left alone and the offset stops before it.
  const seen: LogRecord[] = [];
  const scan = await scanLogFile(file, (r) => seen.push(r), { completeLinesOnly: true });
  assert.equal(scan.skipped, 6);
  assert.equal(scan.offset, content.lastIndexOf('\n') + 1);

  assert.deepEqual(parseLogLine(''), { record: null, skipped: 0 });
});

test('a whole last line without its newline is read', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failproxy-reader-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'x.jsonl');
  await writeFile(file, `${rec('a')}\n${rec('b ✓ ünïcode')}`);
  const { records, skipped } = await readLogFile(file);
  assert.equal(skipped, 0);
  assert.equal((records[1] as { message?: string }).message, 'b ✓ ünïcode');
});

interface Follower {
  records: LogRecord[];
  skipped: number;
  controller: AbortController;
  done: Promise<void>;
}

function follow(dir: string, opts: { fromEnd: boolean; now?: () => Date; drainMs?: number }): Follower {
  const controller = new AbortController();
  const f: Follower = { records: [], skipped: 0, controller, done: Promise.resolve() };
  f.done = followLogs(dir, {
    signal: controller.signal,
    fromEnd: opts.fromEnd,
    pollMs: 15,
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.drainMs !== undefined ? { drainMs: opts.drainMs } : {}),
    onRecord: (r) => f.records.push(r),
    onSkipped: (n) => (f.skipped += n),
  });
  return f;
}

const messages = (f: Follower): string[] => f.records.map((r) => String((r as { message?: string }).message));
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('follow: picks up appended lines, whole lines only', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failproxy-follow-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const now = new Date(2025, 2, 14, 12, 0, 0);
  const file = logFileFor(dir, now);
  await writeFile(file, `${rec('old')}\n{"ts":"2025-03-14T10:00:00.000Z","level":"info","event":"server","action":"st`);

  const f = follow(dir, { fromEnd: true, now: () => now });
  t.after(() => f.controller.abort());
  await pause(60);
  // The half-written line that was there at start is completed now.
  await appendFile(file, `art","message":"completed"}\n${rec('new 1')}\n`);
  await waitFor(() => f.records.length === 2, 3000, 'two records');
  assert.deepEqual(messages(f), ['completed', 'new 1']);

  // A line written in two pieces is read once, when whole.
  const line = rec('in pieces');
  await appendFile(file, line.slice(0, 25));
  await pause(80);
  assert.equal(f.records.length, 2);
  assert.equal(f.skipped, 0);
  await appendFile(file, `${line.slice(25)}\n`);
  await waitFor(() => f.records.length === 3, 3000, 'the pieced line');
  assert.deepEqual(messages(f), ['completed', 'new 1', 'in pieces']);

  await appendFile(file, 'garbage\n');
  await waitFor(() => f.skipped === 1, 3000, 'a skipped line');

  f.controller.abort();
  await f.done;
});

test('follow: from the start of the file, and waiting for a file that does not exist yet', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failproxy-follow-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const now = new Date(2025, 2, 14, 12, 0, 0);
  const f = follow(dir, { fromEnd: false, now: () => now });
  t.after(() => f.controller.abort());
  await pause(50);
  await writeFile(logFileFor(dir, now), `${rec('first')}\n${rec('second')}\n`);
  await waitFor(() => f.records.length === 2, 3000, 'records of a new file');
  assert.deepEqual(messages(f), ['first', 'second']);
  f.controller.abort();
  await f.done;
});

test('follow: moves on to the next day file at local midnight', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failproxy-follow-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let now = new Date(2025, 2, 14, 23, 59, 59, 500);
  const day1 = logFileFor(dir, now);
  await writeFile(day1, `${rec('before start')}\n`);
  const f = follow(dir, { fromEnd: true, now: () => now, drainMs: 400 });
  t.after(() => f.controller.abort());

  await appendFile(day1, `${rec('day 1')}\n`);
  await waitFor(() => f.records.length === 1, 3000, 'the day 1 record');

  now = new Date(2025, 2, 15, 0, 0, 0, 100);
  const day2 = logFileFor(dir, now);
  assert.notEqual(day1, day2);
  await pause(50);
  // A late flush into yesterday's file is still read during the drain.
  await appendFile(day1, `${rec('day 1 late')}\n`);
  await writeFile(day2, `${rec('day 2')}\n`);
  await waitFor(() => f.records.length === 3, 3000, 'the late and the day 2 records');
  assert.deepEqual(messages(f).sort(), ['day 1', 'day 1 late', 'day 2']);

  await appendFile(day2, `${rec('day 2 again')}\n`);
  await waitFor(() => f.records.length === 4, 3000, 'more day 2 records');
  f.controller.abort();
  await f.done;
});
