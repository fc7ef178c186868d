/** `failproxy top`'s reducer and view, rendered with ink-testing-library. */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup, render } from 'ink-testing-library';
import type { FeedRequest } from '../../src/server/feed.js';
import type { EndpointStatus, StatusBody } from '../../src/server/status.js';
import { emptyTotals } from '../../src/logging/usage.js';
import { TopView } from '../../src/ui/TopView.js';
import { initialTopState, topReducer, TOP_RECENT, type TopState } from '../../src/ui/top-state.js';

afterEach(() => cleanup());

const NOW = Date.parse('2026-12-04T12:00:00.000Z');

function endpointStatus(name: string, extra: Partial<EndpointStatus> = {}): EndpointStatus {
  return {
    name,
    model: `${name}-model`,
    state: 'ok',
    cooling_until: null,
    reason: null,
    message: null,
    consecutive_failures: 0,
    window: { successes: 0, failures: {}, p50_ms: null, p95_ms: null, ttft_p50_ms: null, ttft_p95_ms: null },
    usage: emptyTotals(),
    ...extra,
  };
}

const STATUS: StatusBody = {
  uptime_s: 125,
  health_store: { kind: 'memory' } as unknown as StatusBody['health_store'],
  groups: [
    {
      name: 'think-stream',
      skipped: [],
      usage: { ...emptyTotals(), requests: 4, prompt_tokens: 3000, completion_tokens: 1200, cost: 0.0126 },
      endpoints: [
        endpointStatus('or-free', {
          state: 'cooling',
          cooling_until: new Date(NOW + 252_000).toISOString(),
          reason: 'rate_limit',
          message: 'Rate limit exceeded',
          window: {
            successes: 1,
            failures: { rate_limit: 3 },
            p50_ms: 300,
            p95_ms: 900,
            ttft_p50_ms: null,
            ttft_p95_ms: null,
          },
        }),
        endpointStatus('chutes', {
          window: { successes: 4, failures: {}, p50_ms: 1800, p95_ms: 2500, ttft_p50_ms: 400, ttft_p95_ms: 700 },
          usage: { ...emptyTotals(), requests: 4, prompt_tokens: 3000, completion_tokens: 1200, cost: 0.0126 },
        }),
      ],
    },
  ],
};

function feedRequest(id: string, extra: Partial<FeedRequest> = {}): FeedRequest {
  return {
    id,
    ts: new Date(NOW).toISOString(),
    group: 'think-stream',
    stream: true,
    outcome: 'ok',
    status: 200,
    endpoint: 'chutes',
    ms: 1900,
    ttft_ms: 400,
    attempts: [
      { n: 1, endpoint: 'or-free', ok: false, class: 'rate_limit', status: 429, ms: 120, message: 'slow down' },
      { n: 2, endpoint: 'chutes', ok: true, class: null, status: 200, ms: 1800, message: null },
    ],
    usage: { prompt_tokens: 750, completion_tokens: 300, cached_tokens: 0, reasoning_tokens: 0, cost: 0.00315 },
    ...extra,
  };
}

const view = (state: TopState, height = 40) => <TopView state={state} width={120} height={height} color={false} />;

test('the reducer keeps the snapshot, newest requests first, and a bounded feed', () => {
  let state = initialTopState('http://127.0.0.1:8000', NOW);
  assert.equal(state.connection, 'connecting');
  state = topReducer(state, {
    type: 'snapshot',
    status: STATUS,
    series: [],
    recent: [feedRequest('a'), feedRequest('b')],
  });
  assert.equal(state.connection, 'live');
  assert.deepEqual(
    state.recent.map((r) => r.id),
    ['b', 'a'],
  );
  state = topReducer(state, { type: 'request', request: feedRequest('c') });
  assert.deepEqual(
    state.recent.map((r) => r.id),
    ['c', 'b', 'a'],
  );
  for (let i = 0; i < TOP_RECENT + 5; i++)
    state = topReducer(state, { type: 'request', request: feedRequest(`x${i}`) });
  assert.equal(state.recent.length, TOP_RECENT);
  state = topReducer(state, { type: 'disconnected', problem: 'connection reset' });
  assert.equal(state.connection, 'reconnecting');
  assert.equal(state.problem, 'connection reset');
});

test('the view shows each endpoint with its state, success, latency, tokens and cost, then the chains', () => {
  let state = initialTopState('http://127.0.0.1:8000', NOW);
  state = topReducer(state, {
    type: 'snapshot',
    status: STATUS,
    series: [],
    recent: [
      feedRequest('a'),
      feedRequest('b', {
        outcome: 'failed',
        status: 502,
        endpoint: null,
        attempts: [
          {
            n: 1,
            endpoint: 'or-free',
            ok: false,
            class: 'timeout',
            status: null,
            ms: 60_000,
            message: 'no first token',
          },
        ],
        usage: null,
      }),
    ],
  });
  const frame = render(view(state)).lastFrame() ?? '';
  assert.match(
    frame,
    /FailProxy top http:\/\/127\.0\.0\.1:8000 · live · up 2m05s · 4 answered · 4\.2k tokens · \$0\.0126/,
  );
  assert.match(frame, /think-stream 1\/2 available/);
  assert.match(frame, /or-free\s+cooling 4m12s: rate_limit\s+25% of 4\s+300 ms\/900 ms\s+—\s+—/);
  assert.match(frame, /chutes\s+ok\s+100% of 4\s+1\.8 s\/2\.5 s\s+400 ms\/700 ms\s+3\.0k\/1\.2k \$0\.0126/);
  assert.match(frame, /think-stream or-free ✗ rate_limit 429 → chutes ✓ 1\.8 s\s+1\.1k tok \$0\.0032/);
  assert.match(frame, /think-stream or-free ✗ timeout ✗ failed \(502\)/);
  assert.match(frame, /q quits/);
  // The cooldown counts down as time passes.
  const later = topReducer(state, { type: 'tick', now: NOW + 200_000 });
  assert.match(render(view(later)).lastFrame() ?? '', /cooling 52s: rate_limit/);
});

test('the feed takes only the rows the terminal has left', () => {
  let state = initialTopState('http://x', NOW);
  state = topReducer(state, {
    type: 'snapshot',
    status: STATUS,
    series: [],
    recent: Array.from({ length: 30 }, (_, i) => feedRequest(`r${i}`)),
  });
  const frame = render(view(state, 20)).lastFrame() ?? '';
  const chains = frame.split('\n').filter((l) => l.includes('→ chutes ✓'));
  assert.ok(chains.length >= 3, `${chains.length} feed rows:\n${frame}`);
  assert.ok(frame.split('\n').length < 20, `the frame fits 20 rows:\n${frame}`);
});
