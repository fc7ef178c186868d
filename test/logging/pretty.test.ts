import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stripVTControlCharacters } from 'node:util';
import { Chalk } from 'chalk';
import {
  colorLevelFor,
  formatChain,
  formatDuration,
  formatRecord,
  formatRequestDetail,
  formatStatsTable,
  formatTime,
  noColors,
} from '../../src/logging/pretty.js';
import type { AttemptRecordLine, RequestRecord } from '../../src/logging/types.js';
import { STATS_DAY_EXPECTED } from './fixtures.js';

const TS = '2025-03-14T12:01:02.345Z';

function attempt(n: number, endpoint: string, more: Partial<AttemptRecordLine> = {}): AttemptRecordLine {
  return {
    ts: TS,
    level: 'info',
    event: 'attempt',
    id: 'req-1',
    group: 'think-stream',
    endpoint,
    n,
    ok: true,
    class: null,
    status: 200,
    message: null,
    ms: 100,
    ...more,
  };
}

function request(more: Partial<RequestRecord> = {}): RequestRecord {
  return {
    ts: TS,
    level: 'info',
    event: 'request',
    id: 'req-1',
    group: 'think-stream',
    stream: true,
    endpoint: 'chutes-r1',
    attempts: 2,
    status: 200,
    outcome: 'ok',
    ms: 2150,
    ttft_ms: 400,
    usage: { prompt_tokens: 12, completion_tokens: 340, total_tokens: 352 },
    source: 'serve',
    ...more,
  };
}

const rateLimited = attempt(1, 'openrouter-r1', {
  ok: false,
  class: 'rate_limit',
  status: 429,
  ms: 312,
  message: 'Rate limit exceeded',
});

test('formatDuration: ms under a second, else one decimal of seconds', () => {
  assert.equal(formatDuration(0), '0 ms');
  assert.equal(formatDuration(312), '312 ms');
  assert.equal(formatDuration(999.4), '999 ms');
  assert.equal(formatDuration(999.6), '1.0 s');
  assert.equal(formatDuration(1800), '1.8 s');
  assert.equal(formatDuration(61300), '61.3 s');
});

test('formatChain: failover then success', () => {
  const line = formatChain(request(), [attempt(2, 'chutes-r1', { ms: 1800 }), rateLimited], noColors);
  assert.equal(line, 'think-stream  openrouter-r1 ✗ rate_limit 429 (312 ms) → chutes-r1 ✓ 1.8 s');
});

test('formatChain: coloured output strips to the same text', () => {
  const coloured = formatChain(
    request(),
    [rateLimited, attempt(2, 'chutes-r1', { ms: 1800 })],
    new Chalk({ level: 1 }),
  );
  assert.notEqual(coloured, stripVTControlCharacters(coloured));
  assert.equal(
    stripVTControlCharacters(coloured),
    'think-stream  openrouter-r1 ✗ rate_limit 429 (312 ms) → chutes-r1 ✓ 1.8 s',
  );
});

test('formatChain: failed, interrupted and cancelled requests end with ✗ and the class', () => {
  const timeout = attempt(2, 'chutes-r1', { ok: false, class: 'timeout', status: null, ms: 60000 });
  assert.equal(
    formatChain(request({ outcome: 'failed', status: 504, endpoint: null }), [rateLimited, timeout], noColors),
    'think-stream  openrouter-r1 ✗ rate_limit 429 (312 ms) → chutes-r1 ✗ timeout (60.0 s)',
  );
  const broken = attempt(2, 'chutes-r1', { ok: false, class: 'stream_interrupted', status: 200, ms: 2500 });
  assert.equal(
    formatChain(request({ outcome: 'interrupted' }), [rateLimited, broken], noColors),
    'think-stream  openrouter-r1 ✗ rate_limit 429 (312 ms) → chutes-r1 ✗ stream_interrupted 200 (2.5 s)',
  );
  // The committed attempt logged as ok: the outcome still says what happened.
  assert.equal(
    formatChain(request({ outcome: 'interrupted' }), [attempt(1, 'chutes-r1', { ms: 2500 })], noColors),
    'think-stream  chutes-r1 ✓ 2.5 s ✗ stream_interrupted',
  );
  assert.equal(
    formatChain(request({ outcome: 'cancelled', endpoint: null }), [], noColors),
    'think-stream  ✗ cancelled',
  );
});

test('formatRecord: one line per event', () => {
  const time = formatTime(TS);
  assert.match(time, /^\d{2}:\d{2}:\d{2}\.345$/);
  assert.equal(
    formatRecord(rateLimited, noColors),
    `${time} INFO  attempt  think-stream  openrouter-r1 ✗ rate_limit 429 312ms  "Rate limit exceeded"  [req-1 #1]`,
  );
  assert.equal(
    formatRecord(request(), noColors),
    `${time} INFO  request  think-stream  chutes-r1 ✓ 200 2.2s  2 attempts  ttft 400ms  352 tok  [req-1]`,
  );
  assert.equal(
    formatRecord(
      { ts: TS, level: 'error', event: 'config', action: 'error', file: 'profiles/x.yaml', message: 'bad\nfield' },
      noColors,
    ),
    `${time} ERROR config   error  profiles/x.yaml  "bad field"`,
  );
  assert.equal(
    formatRecord({ ts: TS, level: 'info', event: 'server', action: 'start', url: 'http://127.0.0.1:8000' }, noColors),
    `${time} INFO  server   start  http://127.0.0.1:8000`,
  );
  const unknown = { ts: TS, level: 'debug', event: 'future', answer: 42 } as unknown as RequestRecord;
  assert.equal(formatRecord(unknown, noColors), `${time} DEBUG future   answer=42`);
  assert.ok(!formatRecord(rateLimited, noColors).includes('\n'));
});

test('formatRequestDetail: each attempt, then the outcome', () => {
  const lines = formatRequestDetail(
    'req-1',
    [attempt(2, 'chutes-r1', { ms: 1800, ttft_ms: 400 }), rateLimited],
    request(),
    noColors,
  );
  assert.equal(lines.length, 4);
  assert.match(lines[0] ?? '', /^request req-1 {2}think-stream {2}stream {2}serve {2}2025-03-1\d /);
  assert.equal(lines[1], '  #1  openrouter-r1  ✗ rate_limit  429  312ms  "Rate limit exceeded"');
  assert.equal(lines[2], '  #2  chutes-r1      ✓  200  1.8s  ttft 400ms');
  assert.equal(lines[3], '  → ✓ ok  status 200  via chutes-r1  2 attempts  2.2s  ttft 400ms  tokens 12+340=352');
  const pending = formatRequestDetail('req-1', [rateLimited], null, noColors);
  assert.match(pending.at(-1) ?? '', /no request record/);
});

test('formatStatsTable: aligned rows and group outcomes', () => {
  const lines = formatStatsTable(STATS_DAY_EXPECTED.endpoints, STATS_DAY_EXPECTED.groups, noColors);
  assert.match(lines[0] ?? '', /^GROUP\s+ENDPOINT\s+REQUESTS\s+SUCCESS\s+FAILURES\s+P50\s+P95\s+TTFT P50\s+TTFT P95$/);
  const openrouter = lines.find((l) => l.includes('openrouter-r1')) ?? '';
  assert.match(
    openrouter,
    /think-stream\s+openrouter-r1\s+5\s+20\.0%\s+rate_limit:3 timeout:1\s+900ms\s+900ms\s+200ms\s+200ms$/,
  );
  assert.ok(
    lines.some((l) => /^think-stream\s+5 requests: 3 ok, 1 failed, 1 interrupted {2}p50 2\.2s {2}p95 61\.3s$/.test(l)),
  );
});

test('NO_COLOR turns colours off; chalk alone ignores it', () => {
  assert.equal(colorLevelFor('stdout', { NO_COLOR: '1' }), 0);
  assert.equal(colorLevelFor('stderr', { NO_COLOR: '1' }), 0);
});
