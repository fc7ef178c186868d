/** The verified resume's pieces: where a prefill is cut, and what the filter lets through. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planResume, ResumeFilter } from '../../src/core/resume-filter.js';
import type { ChatCompletionChunk } from '../../src/core/types.js';

const piece = (content: string, finish: 'stop' | null = null): ChatCompletionChunk => ({
  id: 'x',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'm',
  choices: [{ index: 0, delta: { content }, finish_reason: finish }],
});

/** Feed `parts` and return what reaches the client, or why it stopped. */
function run(sent: string, continues: boolean, parts: string[]): string | { diverged: string } {
  const filter = new ResumeFilter(planResume(sent, continues), { content: sent, reasoning: '' });
  let out = '';
  for (const [i, p] of parts.entries()) {
    const r = filter.push(piece(p, i === parts.length - 1 ? 'stop' : null));
    if (r.kind === 'diverged') return { diverged: r.why };
    out += r.chunk?.choices[0]?.delta.content ?? '';
  }
  return out;
}

describe('planResume', () => {
  it('holds back the last words, cutting before a space', () => {
    const plan = planResume('The quick brown fox jumps over the lazy dog again', true);
    assert.equal(plan.mode, 'prefill');
    assert.ok(plan.prefill.length <= 50 - 12);
    assert.ok(!plan.prefill.endsWith(' '));
    assert.equal('The quick brown fox jumps over the lazy dog again'[plan.prefill.length], ' ');
  });

  it('restarts when the endpoint does not continue prefills, or too little was sent', () => {
    assert.deepEqual(planResume('The quick brown fox jumps over the lazy dog', false), { mode: 'restart', prefill: '' });
    assert.deepEqual(planResume('short', true), { mode: 'restart', prefill: '' });
  });

  it('cuts text without spaces between characters, never inside a surrogate pair', () => {
    const text = '这是一个没有空格的中文句子用来测试断点😀😀😀😀😀😀';
    const plan = planResume(text, true);
    assert.equal(plan.mode, 'prefill');
    const code = text.charCodeAt(plan.prefill.length);
    assert.ok(!(code >= 0xdc00 && code <= 0xdfff), 'the tail does not start with half a character');
  });
});

describe('ResumeFilter', () => {
  const sent = 'alpha beta gamma delta epsilon zeta';
  const plan = planResume(sent, true);
  const tail = sent.slice(plan.prefill.length);

  it('a continuation that reproduces the tail: only the new text goes on', () => {
    assert.equal(run(sent, true, [tail.slice(0, 3), tail.slice(3), ' eta theta']), ' eta theta');
  });

  it('a restart that reproduces the whole answer: only the new text goes on', () => {
    assert.equal(run(sent, true, ['alpha beta', ' gamma delta epsilon zeta', ' eta']), ' eta');
    assert.equal(run(sent, false, ['alpha ', 'beta gamma delta epsilon zeta eta']), ' eta');
  });

  it('anything else diverges before a word of it is let through', () => {
    assert.deepEqual(run(sent, true, ['Sure! ', 'Here is']), { diverged: 'the new answer differs from what was already sent' });
    assert.deepEqual(run(sent, false, ['alpha beta gamma', ' DELTA']), { diverged: 'the new answer differs from what was already sent' });
  });

  it('an answer that ends before reproducing what was sent diverges', () => {
    assert.ok(typeof run(sent, false, ['alpha beta']) === 'object');
    assert.ok(typeof run(sent, true, [tail.slice(0, 4)]) === 'object');
  });

  it('holds text that could still go either way', () => {
    const filter = new ResumeFilter(planResume(sent, true), { content: sent, reasoning: '' });
    const r = filter.push(piece(tail.slice(0, 2)));
    assert.ok(r.kind === 'emit' && r.chunk === null);
  });
});
