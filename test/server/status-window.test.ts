/**
 * The per-endpoint window behind `/status` (SPEC §4): the last 500 attempts of
 * the last five minutes, kept in fixed-size rings (#18).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestContext } from '../../src/core/observe.js';
import type { EngineEvent, RequestSummary } from '../../src/core/types.js';
import { STATUS_WINDOW_MAX, STATUS_WINDOW_MS, StatusObserver } from '../../src/server/status.js';

const context: RequestContext = { requestId: 'r', group: 'g', stream: false, source: 'serve', repaired: false, messages: [], body: { model: 'g', messages: [] } };

function summary(ms: number): RequestSummary {
  return { requestId: 'r', group: 'g', stream: false, endpoint: 'a', attempts: [{ endpoint: 'a', class: null, status: null, message: null, ms }], ms, ttftMs: ms, usage: null };
}

const done = (ms: number): EngineEvent => ({ type: 'done', summary: summary(ms), finishReason: 'stop' });
const failed = (ms: number): EngineEvent => ({ type: 'attempt_failed', n: 1, endpoint: 'a', failure: { class: 'rate_limit', message: '429' }, ms, afterCommit: false });
const commit = (ttftMs: number): EngineEvent => ({ type: 'commit', n: 1, endpoint: 'a', model: 'm', ttftMs });

test('past the cap the oldest attempts leave the window, in order, classes intact', () => {
  let now = 1_000_000;
  const status = new StatusObserver(() => now);
  // 300 failures, then 400 successes of 10 ms: the window holds the last 500.
  for (let i = 0; i < 300; i++, now++) status.onEvent(context, failed(1000));
  for (let i = 0; i < 400; i++, now++) status.onEvent(context, done(10));
  const stats = status.stats('g', 'a');
  assert.equal(stats.successes, 400);
  assert.deepEqual(stats.failures, { rate_limit: STATUS_WINDOW_MAX - 400 });
  assert.equal(stats.p50_ms, 10);
  assert.equal(stats.p95_ms, 1000);
});

test('attempts and first-token times older than the window are not counted', () => {
  let now = 5_000_000;
  const status = new StatusObserver(() => now);
  status.onEvent(context, failed(50));
  status.onEvent(context, commit(700));
  now += STATUS_WINDOW_MS + 1;
  status.onEvent(context, commit(20));
  status.onEvent(context, done(30));
  const stats = status.stats('g', 'a');
  assert.equal(stats.successes, 1);
  assert.deepEqual(stats.failures, {});
  assert.equal(stats.ttft_p50_ms, 20);
  assert.deepEqual(status.stats('g', 'other'), { successes: 0, failures: {}, p50_ms: null, p95_ms: null, ttft_p50_ms: null, ttft_p95_ms: null });
});
