import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { JsonlLogger, localDateString, logFileFor } from '../../src/logging/writer.js';

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'failproxy-writer-'));
}

const serverStart = { event: 'server', action: 'start', url: 'http://127.0.0.1:8000' } as const;

test('writes one JSON object per line into a directory it creates on first write', async (t) => {
  const base = await tempDir();
  t.after(() => rm(base, { recursive: true, force: true }));
  const dir = path.join(base, 'nested', 'logs');
  const now = new Date(2025, 2, 14, 12, 0, 0);
  const logger = new JsonlLogger({ dir, level: 'info', now: () => now });
  await assert.rejects(stat(dir), { code: 'ENOENT' }, 'the directory is created lazily');

  for (let i = 0; i < 500; i++) {
    logger.log('info', {
      event: 'attempt',
      id: `r${i}`,
      group: 'g',
      endpoint: 'e',
      n: 1,
      ok: true,
      class: null,
      status: 200,
      message: 'quote " and newline \n inside',
      ms: i,
    });
  }
  await logger.close();

  const files = await readdir(dir);
  const today = `${localDateString(now)}.jsonl`;
  assert.equal(today, '2025-03-14.jsonl');
  assert.deepEqual(files, [today]);
  const text = await readFile(path.join(dir, today), 'utf8');
  assert.ok(text.endsWith('\n'));
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 500);
  lines.forEach((l, i) => {
    const r = JSON.parse(l) as Record<string, unknown>;
    assert.equal(r.id, `r${i}`);
    assert.equal(r.level, 'info');
    assert.equal(r.event, 'attempt');
    assert.match(String(r.ts), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.deepEqual(Object.keys(r).slice(0, 3), ['ts', 'level', 'event']);
  });
});

test('drops records below the level', async (t) => {
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const now = new Date(2025, 2, 14, 12, 0, 0);
  const logger = new JsonlLogger({ dir, level: 'warn', now: () => now });
  assert.equal(logger.enabled('info'), false);
  logger.log('debug', { event: 'server', action: 'start', message: 'debug' });
  logger.log('info', { event: 'server', action: 'start', message: 'info' });
  logger.log('warn', { event: 'server', action: 'start', message: 'warn' });
  logger.log('error', { event: 'server', action: 'stop', message: 'error' });
  await logger.close();
  const lines = (await readFile(logFileFor(dir, now), 'utf8')).trimEnd().split('\n');
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { message: string }).message),
    ['warn', 'error'],
  );
});

test('switches files at local midnight', async (t) => {
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  let now = new Date(2025, 2, 14, 23, 59, 59, 999);
  const logger = new JsonlLogger({ dir, level: 'info', now: () => now });
  logger.log('info', { ...serverStart, message: 'before' });
  logger.log('info', { ...serverStart, message: 'still before' });
  now = new Date(2025, 2, 15, 0, 0, 0, 0);
  logger.log('info', { ...serverStart, message: 'after' });
  await logger.close();

  assert.deepEqual((await readdir(dir)).sort(), ['2025-03-14.jsonl', '2025-03-15.jsonl']);
  const day1 = (await readFile(path.join(dir, '2025-03-14.jsonl'), 'utf8')).trimEnd().split('\n');
  const day2 = (await readFile(path.join(dir, '2025-03-15.jsonl'), 'utf8')).trimEnd().split('\n');
  assert.deepEqual(
    day1.map((l) => (JSON.parse(l) as { message: string }).message),
    ['before', 'still before'],
  );
  const after = JSON.parse(day2[0] ?? '') as { ts: string; message: string };
  assert.equal(day2.length, 1);
  assert.equal(after.message, 'after');
  assert.equal(after.ts, now.toISOString());
});

test('appends to an existing file of the day', async (t) => {
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const now = new Date(2025, 2, 14, 8, 0, 0);
  await writeFile(logFileFor(dir, now), '{"ts":"x","level":"info","event":"server","action":"start"}\n');
  const logger = new JsonlLogger({ dir, level: 'info', now: () => now });
  logger.log('info', serverStart);
  await logger.close();
  assert.equal((await readFile(logFileFor(dir, now), 'utf8')).trimEnd().split('\n').length, 2);
});

test('an unwritable directory is reported once and never throws', async (t) => {
  const base = await tempDir();
  t.after(() => rm(base, { recursive: true, force: true }));
  const blocker = path.join(base, 'a-file');
  await writeFile(blocker, 'not a directory');
  const errors: Error[] = [];
  const logger = new JsonlLogger({ dir: path.join(blocker, 'logs'), level: 'info', onError: (e) => errors.push(e) });
  for (let i = 0; i < 5; i++) logger.log('info', serverStart);
  await logger.close();
  assert.equal(errors.length, 1);
  assert.equal(logger.dropped, 5);
  logger.log('info', serverStart); // after close: silently dropped
});

test('an unserializable record is reported and dropped', async (t) => {
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const errors: Error[] = [];
  const now = new Date(2025, 2, 14, 12, 0, 0);
  const logger = new JsonlLogger({ dir, level: 'info', now: () => now, onError: (e) => errors.push(e) });
  logger.log('info', { event: 'server', action: 'start', message: 10n as unknown as string });
  logger.log('info', serverStart);
  await logger.close();
  assert.equal(errors.length, 1);
  const text = await readFile(logFileFor(dir, now), 'utf8');
  assert.equal(text.trimEnd().split('\n').length, 1);
});
