/**
 * `failproxy logs`: in-process through commander (no build needed), and as the
 * built CLI (`node bin/failproxy.js logs ...`, skipped until `npm run build`
 * has produced dist/cli/main.js).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { logsCommand, type LogsCommandDeps } from '../../src/cli/commands/logs.js';
import { UsageError, WorkFailedError } from '../../src/core/errors.js';
import type { LogRecord } from '../../src/logging/types.js';
import { makeLogDir, OTHER_DAY, STATS_DAY, STATS_DAY_EXPECTED, waitFor } from './fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
/** "Today" for the in-process runs: the fixture's stats day. */
const FIXTURE_NOW = (): Date => new Date(2025, 2, 14, 12, 0, 0);

interface Run {
  stdout: string;
  stderr: string;
  error: unknown;
}

async function runLogs(args: string[], deps: LogsCommandDeps = {}): Promise<Run> {
  const run: Run = { stdout: '', stderr: '', error: undefined };
  const command = logsCommand({
    stdout: { write: (s: string) => (run.stdout += s) },
    stderr: { write: (s: string) => (run.stderr += s) },
    env: { NO_COLOR: '1' },
    now: FIXTURE_NOW,
    ...deps,
  });
  command.exitOverride().configureOutput({
    writeOut: (s) => (run.stdout += s),
    writeErr: (s) => (run.stderr += s),
  });
  const program = new Command('failproxy').exitOverride().addCommand(command);
  try {
    await program.parseAsync(['logs', ...args], { from: 'user' });
  } catch (err) {
    run.error = err;
  }
  return run;
}

const ids = (records: LogRecord[]): string[] =>
  records.map((r) => `${r.event}:${String((r as { id?: string }).id ?? '')}`);

test('logs (in-process): --json, -n and filters', async (t) => {
  const { dir, cleanup } = await makeLogDir();
  t.after(cleanup);

  const all = await runLogs(['--log-dir', dir, '--date', STATS_DAY, '--json']);
  assert.equal(all.error, undefined);
  const records = JSON.parse(all.stdout) as LogRecord[];
  assert.equal(records.length, 18);
  assert.match(all.stderr, /skipped 2 unreadable lines/);

  const last3 = JSON.parse((await runLogs(['--log-dir', dir, '-n', '3', '--json'])).stdout) as LogRecord[];
  assert.deepEqual(ids(last3), ['request:r5', 'attempt:r6', 'request:r6']);

  const nothink = JSON.parse((await runLogs(['--log-dir', dir, '--group', 'nothink', '--json'])).stdout) as LogRecord[];
  assert.deepEqual(ids(nothink), ['attempt:r6', 'request:r6']);

  const chutes = JSON.parse(
    (await runLogs(['--log-dir', dir, '--endpoint', 'chutes-r1', '--json'])).stdout,
  ) as LogRecord[];
  assert.deepEqual(ids(chutes), [
    'attempt:r1',
    'request:r1',
    'attempt:r3',
    'request:r3',
    'attempt:r4',
    'request:r4',
    'attempt:r5',
  ]);

  const warn = JSON.parse((await runLogs(['--log-dir', dir, '--level', 'WARN', '--json'])).stdout) as LogRecord[];
  assert.equal(warn.length, 7);
  assert.ok(warn.every((r) => r.level === 'warn' || r.level === 'error'));

  const none = await runLogs(['--log-dir', dir, '-n', '0', '--json']);
  assert.deepEqual(JSON.parse(none.stdout), []);
});

test('logs (in-process): pretty lines, $FAILPROXY_LOG_DIR, no colour under NO_COLOR', async (t) => {
  const { dir, cleanup } = await makeLogDir();
  t.after(cleanup);
  const run = await runLogs([], { env: { NO_COLOR: '1', FAILPROXY_LOG_DIR: dir } });
  assert.equal(run.error, undefined);
  const lines = run.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 18);
  assert.ok(!run.stdout.includes('\u001b['));
  assert.ok(lines.some((l) => /INFO {2}attempt {2}think-stream {2}chutes-r1 ✓ 200 1\.8s/.test(l)));
  assert.ok(
    lines.some((l) =>
      /WARN {2}attempt {2}think-stream {2}openrouter-r1 ✗ rate_limit 429 312ms {2}"Rate limit exceeded"/.test(l),
    ),
  );
});

test('logs (in-process): --request shows the chain, searching older days', async (t) => {
  const { dir, cleanup } = await makeLogDir();
  t.after(cleanup);
  const run = await runLogs(['--log-dir', dir, '--request', 'r1']);
  assert.equal(run.error, undefined);
  const lines = run.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^request r1 {2}think-stream/);
  assert.match(lines[1] ?? '', /#1 {2}openrouter-r1 {2}✗ rate_limit {2}429 {2}312ms {2}"Rate limit exceeded"/);
  assert.match(lines[2] ?? '', /#2 {2}chutes-r1 {6}✓ {2}200 {2}1\.8s/);
  assert.match(lines[3] ?? '', /→ ✓ ok {2}status 200 {2}via chutes-r1 {2}2 attempts/);

  const json = JSON.parse((await runLogs(['--log-dir', dir, '--request', 'r5', '--json'])).stdout) as LogRecord[];
  assert.deepEqual(ids(json), ['attempt:r5', 'attempt:r5', 'request:r5']);

  const older = await runLogs(['--log-dir', dir, '--request', 'old1', '--json']);
  assert.equal((JSON.parse(older.stdout) as LogRecord[]).length, 2);
  const pinned = await runLogs(['--log-dir', dir, '--date', STATS_DAY, '--request', 'old1']);
  assert.ok(pinned.error instanceof WorkFailedError);
  assert.equal(pinned.stdout, '');

  const missing = await runLogs(['--log-dir', dir, '--request', 'nope']);
  assert.ok(missing.error instanceof WorkFailedError);
});

test('logs (in-process): --stats as JSON and as a table', async (t) => {
  const { dir, cleanup } = await makeLogDir();
  t.after(cleanup);
  const json = await runLogs(['--log-dir', dir, '--stats', '--json']);
  assert.deepEqual(JSON.parse(json.stdout), STATS_DAY_EXPECTED);

  const table = await runLogs(['--log-dir', dir, '--stats']);
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^GROUP\s+ENDPOINT\s+REQUESTS\s+SUCCESS\s+FAILURES/);
  assert.ok(
    lines.some((l) => /chutes-r1\s+4\s+50\.0%\s+server:1 stream_interrupted:1\s+1\.2s\s+1\.8s\s+400ms\s+500ms/.test(l)),
  );

  const grouped = JSON.parse((await runLogs(['--log-dir', dir, '--stats', '--json', '--group', 'nothink'])).stdout) as {
    endpoints: unknown[];
  };
  assert.equal(grouped.endpoints.length, 1);
});

test('logs (in-process): usage errors and a missing file', async (t) => {
  const { dir, cleanup } = await makeLogDir();
  t.after(cleanup);
  for (const args of [
    ['--date', '2025-02-30'],
    ['--date', 'yesterday'],
    ['-n', 'ten'],
    ['-n', '1.5'],
    ['--level', 'loud'],
    ['-f', '--stats'],
    ['-f', '--date', OTHER_DAY],
  ]) {
    const run = await runLogs(['--log-dir', dir, ...args]);
    assert.ok(run.error instanceof UsageError, `${args.join(' ')} is a usage error`);
    assert.equal(run.stdout, '');
  }
  const missing = await runLogs(['--log-dir', dir, '--date', '2020-01-01']);
  assert.equal(missing.error, undefined);
  assert.equal(missing.stdout, '');
  assert.match(missing.stderr, /no log file for 2020-01-01/);
});

test('logs (in-process): -f prints the last records, then new ones until aborted', async (t) => {
  const { dir, cleanup } = await makeLogDir();
  t.after(cleanup);
  const controller = new AbortController();
  t.after(() => controller.abort());
  let stdout = '';
  const running = runLogs(['--log-dir', dir, '-f', '-n', '1', '--json'], {
    stdout: { write: (s: string) => (stdout += s) },
    signal: controller.signal,
    pollMs: 15,
  });
  await waitFor(() => stdout.includes('"r6"'), 3000, 'the last record');
  const fresh = { ts: '2025-03-14T12:00:00.000Z', level: 'info', event: 'server', action: 'stop', message: 'fresh' };
  await appendFile(path.join(dir, `${STATS_DAY}.jsonl`), JSON.stringify(fresh) + '\n');
  await waitFor(() => stdout.includes('fresh'), 3000, 'the appended record');
  controller.abort();
  const run = await running;
  assert.equal(run.error, undefined);
  const lines = stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as LogRecord);
  assert.deepEqual(ids(lines), ['request:r6', 'server:']);
});

// ---------------------------------------------------------------------------
// The built CLI.

const BUILT = existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'));
const skip = BUILT ? false : 'dist/cli/main.js is missing (run npm run build)';

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', TZ: 'UTC' };
  delete env.FORCE_COLOR;
  delete env.FAILPROXY_LOG_DIR;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/failproxy.js', 'logs', ...args], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('logs (built CLI): --json, -n, filters, --request, --stats, exit codes', { skip }, async (t) => {
  const { dir, cleanup } = await makeLogDir();
  t.after(cleanup);
  const base = ['--log-dir', dir, '--date', STATS_DAY];

  const all = await cli([...base, '--json']);
  assert.equal(all.code, 0, all.stderr);
  assert.equal((JSON.parse(all.stdout) as LogRecord[]).length, 18);
  assert.match(all.stderr, /skipped 2 unreadable lines/);

  const last2 = await cli([...base, '-n', '2', '--json']);
  assert.deepEqual(ids(JSON.parse(last2.stdout) as LogRecord[]), ['attempt:r6', 'request:r6']);

  const filtered = await cli([...base, '--group', 'nothink', '--endpoint', 'local', '--json']);
  assert.deepEqual(ids(JSON.parse(filtered.stdout) as LogRecord[]), ['attempt:r6', 'request:r6']);

  const chain = await cli([...base, '--request', 'r1']);
  assert.equal(chain.code, 0, chain.stderr);
  assert.match(chain.stdout, /#1 {2}openrouter-r1 {2}✗ rate_limit {2}429 {2}312ms/);
  assert.match(chain.stdout, /#2 {2}chutes-r1 {6}✓/);
  assert.match(chain.stdout, /→ ✓ ok/);
  assert.ok(!chain.stdout.includes('\u001b['));

  const stats = await cli([...base, '--stats', '--json']);
  assert.deepEqual(JSON.parse(stats.stdout), STATS_DAY_EXPECTED);

  const badDate = await cli(['--log-dir', dir, '--date', '2025-13-01']);
  assert.equal(badDate.code, 2);
  assert.equal(badDate.stdout, '');

  const missing = await cli(['--log-dir', dir, '--date', '2020-01-01']);
  assert.equal(missing.code, 0);
  assert.equal(missing.stdout, '');
  assert.match(missing.stderr, /no log file/);
});
