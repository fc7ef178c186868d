import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup, render } from 'ink-testing-library';
import { AskView } from '../../src/ui/AskView.js';
import { AttemptLine } from '../../src/ui/AttemptLine.js';
import { spinnerFrame } from '../../src/ui/Spinner.js';
import type { AskState } from '../../src/ui/state.js';
import { chunk, commit, fail, record, reduce, start, summary, tick, USAGE } from './events.js';

afterEach(() => cleanup());

const view = (state: AskState, width = 80, showReasoning = false) => (
  <AskView state={state} width={width} showReasoning={showReasoning} color={false} />
);

test('an attempt in progress shows its name, a spinner and the time so far', () => {
  const state = reduce([tick(0), start(1, 'openrouter-r1'), tick(1300)]);
  const frame = render(view(state)).lastFrame() ?? '';
  assert.match(frame, /\[1\] openrouter-r1 /);
  assert.ok(frame.includes(spinnerFrame(1300)), frame);
  assert.match(frame, /1\.3 s/);
  assert.match(frame, /1 attempt · elapsed 1\.3 s/);
});

test('a failed attempt shows ✗ with its class, status, time and message', () => {
  const state = reduce([
    start(1, 'openrouter-r1'),
    fail(1, 'openrouter-r1', 'rate_limit', 429, 'Rate limit exceeded', 312),
    tick(400),
    start(2, 'chutes-r1'),
  ]);
  const frame = render(view(state)).lastFrame() ?? '';
  assert.match(frame, /\[1\] openrouter-r1 ✗ rate_limit 429 \(312 ms\): Rate limit exceeded/);
  assert.match(frame, /\[2\] chutes-r1 /);
});

test('the answer streams beneath the attempts; reasoning only with showReasoning', () => {
  const state = reduce([
    start(1, 'a'),
    commit(1, 'a', 200),
    chunk({ reasoning_content: 'let me think\n' }),
    chunk({ content: 'First line\nSecond' }),
  ]);
  const plain = render(view(state)).lastFrame() ?? '';
  assert.match(plain, /\[1\] a ✓ first token 200 ms/);
  assert.match(plain, /First line\nSecond/);
  assert.doesNotMatch(plain, /let me think/);
  cleanup();
  const withReasoning = render(view(state, 80, true)).lastFrame() ?? '';
  assert.match(withReasoning, /let me think[\s\S]*First line/);
});

test('the footer: endpoint used, attempts, first token, total time and tokens', () => {
  const state = reduce([
    start(1, 'a'),
    fail(1, 'a', 'server', 503, 'down', 20),
    start(2, 'b'),
    commit(2, 'b', 100),
    chunk({ content: 'Hi.' }),
    {
      type: 'done',
      summary: summary([record('a', 'server', 503, 'down', 20), record('b', null, null, null, 900)], {
        endpoint: 'b',
        ttftMs: 120,
        ms: 950,
        usage: USAGE,
      }),
      finishReason: 'stop',
    },
  ]);
  const frame = render(view(state, 120)).lastFrame() ?? '';
  assert.match(frame, /✓ b \(b-model\) · 2 attempts · first token 120 ms · total 950 ms · 5 in · 7 out · 12 tokens/);
  assert.match(frame, /Hi\./);
});

test('failed, interrupted and cancelled runs end with ✗ in the footer', () => {
  const failed = reduce([
    start(1, 'a'),
    fail(1, 'a', 'network', undefined, 'refused', 5),
    {
      type: 'failed',
      summary: summary([record('a', 'network')], { ms: 6 }),
      status: 502,
      headers: {},
      error: { error: { message: 'x', type: 't', param: null, code: null } },
    },
  ]);
  assert.match(render(view(failed)).lastFrame() ?? '', /✗ every endpoint of g failed · 1 attempt/);
  cleanup();
  const interrupted = reduce([
    start(1, 'a'),
    commit(1, 'a'),
    chunk({ content: 'partial' }),
    fail(1, 'a', 'stream_interrupted', undefined, 'reset', 80, true),
    {
      type: 'interrupted',
      summary: summary([record('a', 'stream_interrupted')], { endpoint: 'a', ms: 90 }),
      failure: { class: 'stream_interrupted', message: 'reset' },
      error: { error: { message: 'broke', type: 't', param: null, code: 'stream_interrupted' } },
    },
  ]);
  const cut = render(view(interrupted)).lastFrame() ?? '';
  assert.match(cut, /partial/);
  assert.match(cut, /✗ a \(a-model\) broke off mid-answer; the answer above is incomplete/);
  cleanup();
  const cancelled = reduce([start(1, 'a'), tick(50), { type: 'cancelled', summary: summary([], { ms: 50 }) }]);
  const frame = render(view(cancelled)).lastFrame() ?? '';
  assert.match(frame, /\[1\] a ✗ cancelled/);
  assert.match(frame, /✗ cancelled · 1 attempt · total 50 ms/);
});

test('attempt lines are cut to the width, never wrapped', () => {
  const state = reduce([
    start(1, 'a-very-long-endpoint-name'),
    fail(1, 'a-very-long-endpoint-name', 'server', 502, 'x'.repeat(200), 10),
  ]);
  const { lastFrame } = render(<AttemptLine attempt={state.attempts[0]!} now={0} width={40} color={false} />);
  const lines = (lastFrame() ?? '').split('\n');
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.length <= 40, lines[0]);
  assert.match(lines[0]!, /^\[1\] a-very-long-endpoint-name ✗ server/);
});

test('an abandoned hedge and a resumed attempt say so', () => {
  const state = reduce([
    start(1, 'slow'),
    start(2, 'fast'),
    commit(2, 'fast', 300),
    { type: 'attempt_abandoned', n: 1, endpoint: 'slow', ms: 2300, reason: 'another attempt answered first' },
    chunk({ content: 'Once' }),
    fail(2, 'fast', 'stream_interrupted', undefined, 'reset', 500, true),
    { type: 'resume', n: 3, endpoint: 'spare', mode: 'restart', reusedChars: 4 },
    start(3, 'spare'),
  ]);
  const frame = render(view(state, 120)).lastFrame() ?? '';
  assert.match(frame, /\[2\] fast ✓ first token 300 ms/);
  assert.match(frame, /\[1\] slow ○ abandoned \(2\.3 s\): another attempt answered first/);
  assert.match(frame, /Once\n\n\[2\] fast ✗ stream_interrupted \(500 ms\) mid-answer: reset/);
  assert.match(frame, /\[3\] spare \(resumes the answer: restart\) /);
});
