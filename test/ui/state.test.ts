import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerText, askReducer, finishedLines, initialAskState } from '../../src/ui/state.js';
import { chunk, commit, fail, record, reduce, start, summary, tick, USAGE } from './events.js';

test('success: one attempt commits, streams and finishes', () => {
  const state = reduce([
    tick(10),
    start(1, 'a'),
    tick(40),
    commit(1, 'a', 30),
    chunk({ role: 'assistant', content: '' }),
    chunk({ content: 'Hello' }),
    chunk({ content: ' world' }),
    chunk({}, 'stop'),
    chunk({}, null, USAGE),
    {
      type: 'done',
      summary: summary([record('a', null, null, null, 90)], { endpoint: 'a', ttftMs: 30, ms: 95, usage: USAGE }),
      finishReason: 'stop',
    },
  ]);
  assert.equal(state.outcome, 'done');
  assert.equal(state.endpoint, 'a');
  assert.equal(state.model, 'a-model');
  assert.equal(answerText(state), 'Hello world');
  assert.deepEqual(state.usage, USAGE);
  assert.equal(state.ttftMs, 30);
  assert.equal(state.totalMs, 95);
  assert.equal(state.finishReason, 'stop');
  assert.equal(state.attempts.length, 1);
  const [a] = state.attempts;
  assert.equal(a?.status, 'ok');
  assert.equal(a?.ms, 90);
  assert.equal(a?.ttftMs, 30);
  assert.equal(a?.startedAt, 10);
  assert.equal(state.error, null);
});

test('an attempt is running until it fails or commits; ticks move the clock', () => {
  let state = reduce([tick(0), start(1, 'a'), tick(500)]);
  assert.equal(state.attempts[0]?.status, 'running');
  assert.equal(state.now, 500);
  assert.equal(state.outcome, 'running');
  state = askReducer(state, tick(900));
  assert.equal(state.now, 900);
});

test('failover then success: the failed attempt keeps its class, status, message and time', () => {
  const state = reduce([
    start(1, 'openrouter-r1'),
    fail(1, 'openrouter-r1', 'rate_limit', 429, 'Rate limit exceeded', 312),
    start(2, 'chutes-r1'),
    commit(2, 'chutes-r1', 400),
    chunk({ content: 'ok' }),
    {
      type: 'done',
      summary: summary(
        [
          record('openrouter-r1', 'rate_limit', 429, 'Rate limit exceeded', 312),
          record('chutes-r1', null, null, null, 1800),
        ],
        {
          endpoint: 'chutes-r1',
          ttftMs: 712,
          ms: 2112,
        },
      ),
      finishReason: 'stop',
    },
  ]);
  assert.equal(state.outcome, 'done');
  assert.deepEqual(
    state.attempts.map((a) => [a.n, a.endpoint, a.status, a.failureClass, a.httpStatus, a.ms]),
    [
      [1, 'openrouter-r1', 'failed', 'rate_limit', 429, 312],
      [2, 'chutes-r1', 'ok', null, null, 1800],
    ],
  );
  assert.equal(state.attempts[0]?.message, 'Rate limit exceeded');
  assert.equal(state.endpoint, 'chutes-r1');
  assert.equal(answerText(state), 'ok');
});

test('all failed: every attempt failed, the outcome carries the engine message', () => {
  const message = "All 2 endpoints for 'g' failed: [a] network: refused; [b] server 503: down";
  const state = reduce([
    start(1, 'a'),
    fail(1, 'a', 'network', undefined, 'refused', 5),
    start(2, 'b'),
    fail(2, 'b', 'server', 503, 'down', 20),
    {
      type: 'failed',
      summary: summary([record('a', 'network', null, 'refused', 5), record('b', 'server', 503, 'down', 20)], {
        ms: 30,
      }),
      status: 502,
      headers: {},
      error: { error: { message, type: 'failproxy_error', param: null, code: 'all_endpoints_failed' } },
    },
  ]);
  assert.equal(state.outcome, 'failed');
  assert.equal(state.error, message);
  assert.equal(state.totalMs, 30);
  assert.equal(state.endpoint, null);
  assert.deepEqual(
    state.attempts.map((a) => a.status),
    ['failed', 'failed'],
  );
  assert.equal(state.attempts[0]?.httpStatus, null);
  assert.equal(state.attempts[1]?.httpStatus, 503);
});

test('interruption after commit: the partial answer stays, the attempt failed after commit', () => {
  const state = reduce([
    start(1, 'a'),
    commit(1, 'a'),
    chunk({ content: 'partial an' }),
    fail(1, 'a', 'stream_interrupted', undefined, 'connection reset', 800, true),
    {
      type: 'interrupted',
      summary: summary([record('a', 'stream_interrupted', null, 'connection reset', 800)], { endpoint: 'a', ms: 810 }),
      failure: { class: 'stream_interrupted', message: 'connection reset' },
      error: {
        error: {
          message: 'The upstream stream broke after the answer started',
          type: 'failproxy_error',
          param: null,
          code: 'stream_interrupted',
        },
      },
    },
  ]);
  assert.equal(state.outcome, 'interrupted');
  assert.equal(answerText(state), 'partial an');
  assert.equal(state.attempts[0]?.status, 'failed');
  assert.equal(state.attempts[0]?.afterCommit, true);
  assert.match(state.error ?? '', /broke after the answer started/);
  assert.equal(state.totalMs, 810);
});

test('cancel: the running attempt is marked cancelled with the time it ran', () => {
  const state = reduce([
    tick(100),
    start(1, 'a'),
    fail(1, 'a', 'timeout', undefined, 'no first token', 50),
    tick(200),
    start(2, 'b'),
    tick(950),
    {
      type: 'cancelled',
      summary: summary([record('a', 'timeout'), record('b', null, null, 'cancelled', 750)], { ms: 850 }),
    },
  ]);
  assert.equal(state.outcome, 'cancelled');
  assert.deepEqual(
    state.attempts.map((a) => a.status),
    ['failed', 'cancelled'],
  );
  assert.equal(state.attempts[1]?.ms, 750);
  assert.equal(state.totalMs, 850);
});

test('text: finished lines move to `lines`, reasoning and content never share a line', () => {
  const state = reduce([
    start(1, 'a'),
    commit(1, 'a'),
    chunk({ reasoning_content: 'think' }),
    chunk({ reasoning_content: 'ing\nmore' }),
    chunk({ content: 'line one\n' }),
    chunk({ content: '\nline' }),
    chunk({ content: ' three' }),
  ]);
  assert.deepEqual(finishedLines(state), [
    { kind: 'reasoning', text: 'thinking' },
    { kind: 'reasoning', text: 'more' },
    { kind: 'content', text: 'line one' },
    { kind: 'content', text: '' },
  ]);
  assert.deepEqual(state.partial, { kind: 'content', text: 'line three' });
  assert.equal(answerText(state), 'line one\n\nline three');
});

test('a non-streaming completion fills reasoning, answer and usage', () => {
  const state = reduce([
    start(1, 'a'),
    commit(1, 'a'),
    {
      type: 'completion',
      completion: {
        id: 'c',
        object: 'chat.completion',
        created: 1,
        model: 'm',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: 'The answer.', reasoning_content: 'hmm' },
            logprobs: null,
            finish_reason: 'stop',
          },
        ],
        usage: USAGE,
      },
    },
  ]);
  assert.deepEqual(finishedLines(state), [{ kind: 'reasoning', text: 'hmm' }]);
  assert.equal(answerText(state), 'The answer.');
  assert.deepEqual(state.usage, USAGE);
});

test('the reducer does not mutate the state it is given', () => {
  const before = initialAskState('g', 0);
  const frozen = structuredClone(before);
  askReducer(before, start(1, 'a'));
  assert.deepEqual(before, frozen);
});

test('hedging: the second attempt commits while the first runs; the loser is abandoned', () => {
  const state = reduce([
    tick(0),
    start(1, 'slow'),
    tick(2000),
    start(2, 'fast'),
    tick(2300),
    commit(2, 'fast', 300),
    chunk({ content: 'Answer line\n' }),
    { type: 'attempt_abandoned', n: 1, endpoint: 'slow', ms: 2300, reason: 'another attempt answered first' },
    chunk({ content: 'more' }),
  ]);
  assert.deepEqual(
    state.attempts.map((a) => [a.n, a.status]),
    [
      [1, 'abandoned'],
      [2, 'running'],
    ],
  );
  assert.equal(state.attempts[0]?.message, 'another attempt answered first');
  assert.equal(state.attempts[1]?.startedAt, 2000);
  assert.equal(state.endpoint, 'fast');
  assert.deepEqual(
    state.transcript.map((item) =>
      item.kind === 'attempt' ? `attempt ${item.attempt.n} ${item.attempt.status}` : `line ${item.line.text}`,
    ),
    ['attempt 2 running', 'line Answer line', 'attempt 1 abandoned'],
  );
});

test('resume: the cut text stays above the failure, the next attempt continues the answer', () => {
  const state = reduce([
    start(1, 'a'),
    commit(1, 'a'),
    chunk({ content: 'Once upon' }),
    fail(1, 'a', 'stream_interrupted', undefined, 'reset', 500, true),
    { type: 'resume', n: 2, endpoint: 'b', mode: 'prefill', reusedChars: 9 },
    start(2, 'b'),
    commit(2, 'b', 80),
    chunk({ content: ' a time' }),
    {
      type: 'done',
      summary: summary([record('a', 'stream_interrupted'), record('b', null, null, null, 300)], {
        endpoint: 'b',
        ms: 900,
      }),
      finishReason: 'stop',
    },
  ]);
  assert.equal(state.outcome, 'done');
  assert.equal(state.attempts[1]?.resumed, 'prefill');
  assert.equal(state.attempts[0]?.afterCommit, true);
  assert.deepEqual(
    state.transcript.map((item) =>
      item.kind === 'attempt' ? `attempt ${item.attempt.n} ${item.attempt.status}` : `line ${item.line.text}`,
    ),
    ['attempt 1 running', 'line Once upon', 'attempt 1 failed', 'attempt 2 running'],
  );
  assert.deepEqual(state.partial, { kind: 'content', text: ' a time' });
});
