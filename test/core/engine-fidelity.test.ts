/**
 * The engine's side of pass-through fidelity (issue 13): when a streamed
 * answer of `n > 1` is complete, that it is never resumed, how a refusal in a
 * stream is held, and what a refusal is recorded as.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineEvent } from '../../src/core/types.js';
import { sse, type SseItem } from '../helpers/fake-upstream.js';
import { chatRequest, endpoint, group, last, runAll } from '../helpers/groups.js';
import { answering, streamOf } from '../helpers/openai-answers.js';
import { testRig } from '../helpers/rig.js';

const rig = testRig();

const chunksOf = (events: EngineEvent[]) => events.flatMap((e) => (e.type === 'chunks' ? e.chunks : []));
const starts = (events: EngineEvent[]) => events.flatMap((e) => (e.type === 'attempt_start' ? [e.endpoint] : []));

/** An n=2 stream (choices interleaved) without the items `drop` rejects, e.g. choice 1's finish. */
function twoChoices(drop: (item: SseItem) => boolean = () => false): SseItem[] {
  const items = streamOf({
    choices: [
      { pieces: ['one', ' two'], finish: 'stop' },
      { pieces: ['uno', ' dos'], finish: 'stop' },
    ],
  });
  return items.filter((item) => !drop(item));
}

const isFinishOf = (index: number) => (item: SseItem) => {
  if (!('data' in item)) return false;
  const choices = (item.data as { choices: Array<{ index: number; finish_reason: string | null }> }).choices;
  return choices.some((c) => c.index === index && c.finish_reason !== null);
};

describe('n > 1 streams', () => {
  it('a stream is complete only when every choice finished: a missing finish of choice 1 is an interruption', async () => {
    const a = await rig.upstream(sse(twoChoices(isFinishOf(1))));
    const events = await runAll(rig.engine(), group('g', [endpoint(a.baseurl, { name: 'a' })], { resume: false }), chatRequest({ stream: true, n: 2 }));
    const end = last(events);
    assert.ok(end.type === 'interrupted', `ended with ${end.type}`);
    assert.match(end.error.error.message, /no finish_reason/);
    // Choice 0 finished and was delivered before.
    assert.ok(chunksOf(events).some((c) => c.choices[0]?.index === 0 && c.choices[0].finish_reason === 'stop'));
  });

  it('a broken multi-choice stream is never resumed: no splice of several answers', async () => {
    // Choice 0 finishes, choice 1 is cut; another endpoint could answer.
    const a = await rig.upstream(sse(twoChoices(isFinishOf(1)), { end: 'reset', done: false }));
    const b = await rig.upstream(answering({ choices: [{ pieces: ['one', ' two'], finish: 'stop' }] }));
    const g = group('g', [endpoint(a.baseurl, { name: 'a' }), endpoint(b.baseurl, { name: 'b', prefill: false })], { resume: true });
    const events = await runAll(rig.engine(), g, chatRequest({ stream: true, n: 2 }));
    assert.equal(last(events).type, 'interrupted');
    assert.deepEqual(starts(events), ['a']);
    assert.equal(b.requests.length, 0);
  });

  it('an OpenRouter-style finish_reason "error" on choice 1 is a failure, not a stop', async () => {
    const items = twoChoices().map((item) => {
      if (!isFinishOf(1)(item) || !('data' in item)) return item;
      const data = structuredClone(item.data) as { choices: Array<{ finish_reason: string }> };
      data.choices[0]!.finish_reason = 'error';
      return { data };
    });
    // Chunks apart in time, so the answer is committed before the error arrives.
    const a = await rig.upstream(sse(items, { gapMs: 10 }));
    const events = await runAll(rig.engine(), group('g', [endpoint(a.baseurl, { name: 'a' })], { resume: false }), chatRequest({ stream: true, n: 2 }));
    const end = last(events);
    assert.ok(end.type === 'interrupted', `ended with ${end.type}`);
    assert.match(end.error.error.message, /finish_reason "error"/);
  });

  it('both choices, each finished, end the request as done', async () => {
    const a = await rig.upstream(sse(twoChoices()));
    const events = await runAll(rig.engine(), group('g', [endpoint(a.baseurl, { name: 'a' })]), chatRequest({ stream: true, n: 2 }));
    assert.equal(last(events).type, 'done');
    const text = (index: number) =>
      chunksOf(events)
        .filter((c) => c.choices[0]?.index === index)
        .map((c) => c.choices[0]?.delta.content ?? '')
        .join('');
    assert.equal(text(0), 'one two');
    assert.equal(text(1), 'uno dos');
  });
});

describe('refusals in streams', () => {
  it('a refusal followed by content commits on the content, the held refusal first', async () => {
    const a = await rig.upstream(sse(streamOf({ choices: [{ refusal: ['Partly refused. '], pieces: ['But', ' here'], finish: 'stop' }] })));
    const b = await rig.upstream(answering({ choices: [{ pieces: ['other'], finish: 'stop' }] }));
    const events = await runAll(rig.engine(), group('g', [endpoint(a.baseurl, { name: 'a' }), endpoint(b.baseurl, { name: 'b' })]), chatRequest({ stream: true }));
    assert.equal(last(events).type, 'done');
    assert.equal(b.requests.length, 0);
    const deltas = chunksOf(events).map((c) => c.choices[0]?.delta);
    const firstRefusal = deltas.findIndex((d) => d?.refusal !== undefined);
    const firstContent = deltas.findIndex((d) => typeof d?.content === 'string' && d.content !== '');
    assert.ok(firstRefusal !== -1 && firstRefusal < firstContent, 'the held refusal goes out before the content');
    assert.equal(deltas[firstRefusal]?.refusal, 'Partly refused. ');
    // The commit event comes before any chunk.
    const commit = events.findIndex((e) => e.type === 'commit');
    assert.ok(commit !== -1 && commit < events.findIndex((e) => e.type === 'chunks'));
  });

  it('a refusal is recorded as content_filter, and the endpoint does not cool', async () => {
    const a = await rig.upstream(answering({ choices: [{ refusal: ['No.'], finish: 'stop' }] }));
    const b = await rig.upstream(answering({ choices: [{ pieces: ['Yes.'], finish: 'stop' }] }));
    const engine = rig.engine();
    const epA = endpoint(a.baseurl, { name: 'a' });
    const g = group('g', [epA, endpoint(b.baseurl, { name: 'b' })], { cooldown: { failures: 1, seconds: 60 } });
    for (const stream of [true, false]) {
      const events = await runAll(engine, g, chatRequest({ stream }));
      const failed = events.find((e) => e.type === 'attempt_failed');
      assert.ok(failed?.type === 'attempt_failed');
      assert.equal(failed.failure.class, 'content_filter');
      assert.match(failed.failure.message, /refused to answer: "No\."/);
      assert.equal(last(events).type, 'done');
    }
    assert.equal(engine.health.snapshot(epA).state, 'ok');
    assert.equal(a.requests.length, 2);
  });
});
