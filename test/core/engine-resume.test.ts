/**
 * Resume that cannot lie (SPEC §3.4, §3.11): a stream that broke after commit
 * is continued only into an answer provably the continuation of what the
 * client already has; otherwise it ends with the in-band error. The fakes
 * answer a prefill the ways real providers do (test/helpers/fake-models.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineEvent } from '../../src/core/types.js';
import { sse } from '../helpers/fake-upstream.js';
import { cutAfter, model, prefillOf, tokens, tokenStream } from '../helpers/fake-models.js';
import { chatRequest, endpoint, group, last, runAll, streamedContent } from '../helpers/groups.js';
import { testRig } from '../helpers/rig.js';

const rig = testRig();

const ANSWER = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen.';
/** What the first endpoint delivered before it broke. */
const DELIVERED = tokens(ANSWER).slice(0, 10).join('');

function assertOneCleanStream(events: EngineEvent[]): void {
  const chunks = events.flatMap((e) => (e.type === 'chunks' ? e.chunks : []));
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id');
  assert.equal(chunks.filter((c) => c.choices[0]?.delta.role === 'assistant').length, 1, 'one role');
  assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).length, 1, 'one finish_reason');
  assert.equal(last(events).type, 'done');
}

function assertInterruptedWith(events: EngineEvent[], text: string): void {
  assert.equal(streamedContent(events), text, 'exactly what the first endpoint sent, nothing of another answer');
  const end = last(events);
  assert.ok(end.type === 'interrupted', `ended with ${end.type}`);
  assert.equal(end.error.error.code, 'stream_interrupted');
  const finishes = events.flatMap((e) => (e.type === 'chunks' ? e.chunks.filter((c) => c.choices[0]?.finish_reason) : []));
  assert.equal(finishes.length, 0, 'no finish_reason: nothing looks complete');
}

async function resumeThrough(fallback: Parameters<typeof rig.upstream>[0], overrides: Parameters<typeof endpoint>[1] = {}) {
  const a = await rig.upstream(cutAfter(ANSWER, 10));
  const b = await rig.upstream(fallback);
  const g = group('g', [endpoint(a.baseurl, { name: 'a' }), endpoint(b.baseurl, { name: 'b', ...overrides })]);
  const events = await runAll(rig.engine(), g, chatRequest({ stream: true }));
  return { events, b };
}

describe('resume that cannot lie', () => {
  it('a fallback that continues the prefill: the complete answer once, its tail reproduced', async () => {
    const { events, b } = await resumeThrough(model(ANSWER, 'continue'), { prefill: true });
    assert.equal(streamedContent(events), ANSWER);
    assertOneCleanStream(events);
    const sent = prefillOf(b.requests[0]!);
    assert.ok(sent !== null && DELIVERED.startsWith(sent), 'the prefill is part of what was delivered');
    assert.ok(DELIVERED.length - sent.length >= 12, `the last words are held back (${JSON.stringify(DELIVERED.slice(sent.length))})`);
    assert.equal(b.requests[0]!.body.continue_final_message, true);
    const resume = events.find((e) => e.type === 'resume');
    assert.ok(resume?.type === 'resume' && resume.mode === 'prefill');
  });

  it('a fallback that ignores the prefill and answers afresh: the first text, then the in-band error', async () => {
    const { events } = await resumeThrough(model(ANSWER, 'ignore', 'SPLICED from b: a different answer.'), { prefill: true });
    assertInterruptedWith(events, DELIVERED);
    assert.ok(!JSON.stringify(events).includes('SPLICED'));
  });

  it('an OpenRouter-typed fallback is asked to continue (documented prefill), and still verified', async () => {
    const { events, b } = await resumeThrough(model(ANSWER, 'ignore', 'Sure! Here is a new answer.'), { type: 'openrouter' });
    assert.notEqual(prefillOf(b.requests[0]!), null, 'prefill sent by type default');
    assertInterruptedWith(events, DELIVERED);
  });

  it('an OpenAI-typed fallback is never sent a prefill by default: it would answer afresh', async () => {
    // Sampled again, the model words its answer differently.
    const { events, b } = await resumeThrough(model('A new answer.', 'ignore'));
    assert.equal(prefillOf(b.requests[0]!), null);
    assertInterruptedWith(events, DELIVERED);
  });

  it('a fallback that regenerates the same answer (no prefill): seamless', async () => {
    const { events } = await resumeThrough(model(ANSWER, 'ignore'));
    assert.equal(streamedContent(events), ANSWER);
    assertOneCleanStream(events);
  });

  it('a fallback that ignores the prefill but regenerates the same answer: seamless, as a restart', async () => {
    const { events } = await resumeThrough(model(ANSWER, 'ignore'), { prefill: true });
    assert.equal(streamedContent(events), ANSWER);
    assertOneCleanStream(events);
  });

  it('a fallback that rejects the prefill with 400, then answers differently: the in-band error', async () => {
    const b = await rig.upstream((n, req) => (n === 1 ? model(ANSWER, 'reject')(n, req) : model('Something else entirely.', 'ignore')(n, req)));
    const a = await rig.upstream(cutAfter(ANSWER, 10));
    const g = group('g', [endpoint(a.baseurl, { name: 'a' }), endpoint(b.baseurl, { name: 'b', prefill: true })]);
    const events = await runAll(rig.engine(), g, chatRequest({ stream: true }));
    assertInterruptedWith(events, DELIVERED);
    assert.equal(b.requests.length, 2, 'the rejected prefill, then one plain restart');
    assert.equal(prefillOf(b.requests[1]!), null);
  });

  it('a continuation that starts anywhere but the held-back tail is refused', async () => {
    // The server continues from the end of the whole delivered text, not from the prefill it was sent.
    const skipsTail = () => sse(tokenStream(ANSWER.slice(DELIVERED.length)));
    const { events } = await resumeThrough(skipsTail, { prefill: true });
    assertInterruptedWith(events, DELIVERED);
  });
});
