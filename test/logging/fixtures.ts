/**
 * Log fixtures for the logging tests. The stats answers in `STATS_DAY_EXPECTED`
 * were computed by hand from `statsDayLines()` (nearest-rank percentiles).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { UsageRow } from '../../src/logging/usage-stats.js';
import type { EndpointStats, GroupStats } from '../../src/logging/stats.js';

export const STATS_DAY = '2025-03-14';
export const OTHER_DAY = '2025-03-13';

type Fields = Record<string, unknown>;

let second = 0;
function line(event: string, fields: Fields, level = 'info'): string {
  second++;
  const ts = `2025-03-14T10:00:${String(second).padStart(2, '0')}.000Z`;
  return JSON.stringify({ ts, level, event, ...fields });
}

function attempt(id: string, group: string, endpoint: string, n: number, more: Fields): string {
  const failed = more.ok === false;
  return line(
    'attempt',
    { id, group, endpoint, n, ok: true, class: null, status: 200, message: null, ...more },
    failed ? 'warn' : 'info',
  );
}

function request(id: string, group: string, more: Fields): string {
  return line(
    'request',
    {
      id,
      group,
      stream: true,
      endpoint: null,
      attempts: 1,
      status: 200,
      outcome: 'ok',
      ms: 0,
      ttft_ms: null,
      usage: null,
      source: 'serve',
      ...more,
    },
    more.outcome === 'failed' ? 'error' : 'info',
  );
}

const fail = (cls: string, status: number | null, ms: number, message: string, more: Fields = {}): Fields => ({
  ok: false,
  class: cls,
  status,
  ms,
  message,
  ...more,
});

/** A day with six requests over two groups, plus noise that must be tolerated. */
export function statsDayLines(): string[] {
  second = 0;
  return [
    line('server', { action: 'start', url: 'http://127.0.0.1:8000' }),
    line('config', {
      action: 'loaded',
      group: 'think-stream',
      file: 'profiles/think-stream.json',
      message: '2 endpoints',
    }),
    // r1: rate limited, then answered.
    attempt('r1', 'think-stream', 'openrouter-r1', 1, fail('rate_limit', 429, 312, 'Rate limit exceeded')),
    attempt('r1', 'think-stream', 'chutes-r1', 2, { ms: 1800, ttft_ms: 400 }),
    request('r1', 'think-stream', { endpoint: 'chutes-r1', attempts: 2, ms: 2150, ttft_ms: 400 }),
    // r2: first endpoint answers.
    attempt('r2', 'think-stream', 'openrouter-r1', 1, { ms: 900, ttft_ms: 200 }),
    request('r2', 'think-stream', { endpoint: 'openrouter-r1', ms: 910, ttft_ms: 200 }),
    '{"ts":"2025-03-14T10:00:30.000Z","level":"info","event":"att', // torn: a crashed writer
    // r3: timeout, then answered.
    attempt('r3', 'think-stream', 'openrouter-r1', 1, fail('timeout', null, 60000, 'no first token within 60 s')),
    attempt('r3', 'think-stream', 'chutes-r1', 2, { ms: 1200, ttft_ms: 300 }),
    request('r3', 'think-stream', { endpoint: 'chutes-r1', attempts: 2, ms: 61300, ttft_ms: 300 }),
    // r4: rate limited, then the stream broke after commit.
    attempt('r4', 'think-stream', 'openrouter-r1', 1, fail('rate_limit', 429, 100, 'Rate limit exceeded')),
    attempt(
      'r4',
      'think-stream',
      'chutes-r1',
      2,
      fail('stream_interrupted', 200, 2500, 'upstream closed mid-stream', { ttft_ms: 500 }),
    ),
    request('r4', 'think-stream', {
      endpoint: 'chutes-r1',
      attempts: 2,
      outcome: 'interrupted',
      ms: 2650,
      ttft_ms: 500,
    }),
    'not json at all',
    // r5: everything failed.
    attempt('r5', 'think-stream', 'openrouter-r1', 1, fail('rate_limit', 429, 150, 'Rate limit exceeded')),
    attempt('r5', 'think-stream', 'chutes-r1', 2, fail('server', 502, 700, 'Bad gateway')),
    request('r5', 'think-stream', { attempts: 2, status: 502, outcome: 'failed', ms: 900 }),
    '',
    // r6: another group.
    attempt('r6', 'nothink', 'local', 1, { ms: 50, ttft_ms: 20 }),
    request('r6', 'nothink', { endpoint: 'local', ms: 55, ttft_ms: 20 }),
  ];
}

/** Unreadable lines in `statsDayLines()` (the blank one does not count). */
export const STATS_DAY_SKIPPED = 2;
export const STATS_DAY_RECORDS = 18;

export const STATS_DAY_EXPECTED: { endpoints: EndpointStats[]; groups: GroupStats[]; usage: UsageRow[] } = {
  endpoints: [
    {
      group: 'nothink',
      endpoint: 'local',
      requests: 1,
      successes: 1,
      failures: 0,
      success_rate: 1,
      failures_by_class: {},
      p50_ms: 50,
      p95_ms: 50,
      ttft_p50_ms: 20,
      ttft_p95_ms: 20,
    },
    {
      group: 'think-stream',
      endpoint: 'openrouter-r1',
      requests: 5,
      successes: 1,
      failures: 4,
      success_rate: 0.2,
      failures_by_class: { rate_limit: 3, timeout: 1 },
      p50_ms: 900,
      p95_ms: 900,
      ttft_p50_ms: 200,
      ttft_p95_ms: 200,
    },
    {
      group: 'think-stream',
      endpoint: 'chutes-r1',
      requests: 4,
      successes: 2,
      failures: 2,
      success_rate: 0.5,
      failures_by_class: { server: 1, stream_interrupted: 1 },
      // ok ms [1200, 1800]: p50 rank ceil(1) = 1, p95 rank ceil(1.9) = 2
      p50_ms: 1200,
      p95_ms: 1800,
      // ttft [300, 400, 500] (the interrupted attempt had one too): ranks 2 and 3
      ttft_p50_ms: 400,
      ttft_p95_ms: 500,
    },
  ],
  groups: [
    { group: 'nothink', requests: 1, ok: 1, failed: 0, interrupted: 0, cancelled: 0, p50_ms: 55, p95_ms: 55 },
    // ok ms [910, 2150, 61300]: ranks 2 and 3
    { group: 'think-stream', requests: 5, ok: 3, failed: 1, interrupted: 1, cancelled: 0, p50_ms: 2150, p95_ms: 61300 },
  ],
  // No request in the fixture reports usage.
  usage: [],
};

/** A short earlier day, so the reader sees two files. */
export function otherDayLines(): string[] {
  return [
    JSON.stringify({ ts: '2025-03-13T09:00:00.000Z', level: 'info', event: 'server', action: 'start' }),
    JSON.stringify({
      ts: '2025-03-13T09:00:01.000Z',
      level: 'info',
      event: 'attempt',
      id: 'old1',
      group: 'nothink',
      endpoint: 'local',
      n: 1,
      ok: true,
      class: null,
      status: 200,
      message: null,
      ms: 40,
    }),
    JSON.stringify({
      ts: '2025-03-13T09:00:01.100Z',
      level: 'info',
      event: 'request',
      id: 'old1',
      group: 'nothink',
      stream: false,
      endpoint: 'local',
      attempts: 1,
      status: 200,
      outcome: 'ok',
      ms: 45,
      ttft_ms: null,
      usage: null,
      source: 'ask',
    }),
  ];
}

/** A fresh log directory with both fixture days; `cleanup` removes it. */
export async function makeLogDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failproxy-logs-'));
  await writeFile(path.join(dir, `${STATS_DAY}.jsonl`), statsDayLines().join('\n') + '\n');
  await writeFile(path.join(dir, `${OTHER_DAY}.jsonl`), otherDayLines().join('\n') + '\n');
  await writeFile(path.join(dir, 'notes.txt'), 'not a log\n');
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
