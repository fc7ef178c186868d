import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ThinkSplitter, splitThinkText } from '../../src/core/openai/think.js';
import type { Segment } from '../../src/core/openai/think.js';

/** Feeds the pieces, then merges adjacent segments of one kind (their split is arbitrary). */
function run(pieces: string[], startInside = false): Segment[] {
  const s = new ThinkSplitter({ startInside });
  const all: Segment[] = [];
  for (const p of pieces) {
    const segs = s.push(p);
    for (const seg of segs) assert.notEqual(seg.text, '', 'no empty segments');
    for (let i = 1; i < segs.length; i++) assert.notEqual(segs[i]?.kind, segs[i - 1]?.kind, 'merged in one push');
    all.push(...segs);
  }
  all.push(...s.end());
  const merged: Segment[] = [];
  for (const seg of all) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.kind === seg.kind) last.text += seg.text;
    else merged.push({ ...seg });
  }
  return merged;
}

function everySplit(text: string, expected: Segment[], startInside = false): void {
  assert.deepEqual(run([text], startInside), expected, 'whole');
  for (let a = 0; a <= text.length; a++) {
    assert.deepEqual(run([text.slice(0, a), text.slice(a)], startInside), expected, `cut ${a}`);
    for (let b = a; b <= text.length; b += 3) {
      assert.deepEqual(
        run([text.slice(0, a), text.slice(a, b), text.slice(b)], startInside),
        expected,
        `cuts ${a}, ${b}`,
      );
    }
  }
  assert.deepEqual(run([...text], startInside), expected, 'char by char');
}

test('tags at the start, split at every position', () => {
  everySplit('\n <think>\nI reason < here</think>\n\nThe answer <think> stays', [
    { kind: 'reasoning', text: 'I reason < here' },
    { kind: 'content', text: 'The answer <think> stays' },
  ]);
});

test('opening tag missing (thinkOpen), split at every position', () => {
  everySplit(
    'Reasoning </thin k> text</think>  Answer',
    [
      { kind: 'reasoning', text: 'Reasoning </thin k> text' },
      { kind: 'content', text: 'Answer' },
    ],
    true,
  );
});

test('startInside tolerates a redundant opening tag', () => {
  everySplit('<think>r</think>c', [
    { kind: 'reasoning', text: 'r' },
    { kind: 'content', text: 'c' },
  ], true);
});

test('text without tags is content; a later <think> is content', () => {
  everySplit('Hello <think>x</think> world', [{ kind: 'content', text: 'Hello <think>x</think> world' }]);
  everySplit('  leading spaces kept', [{ kind: 'content', text: '  leading spaces kept' }]);
});

test('partial tags are held back only as long as needed and released at end', () => {
  const s = new ThinkSplitter({ startInside: false });
  assert.deepEqual(s.push('  <th'), []);
  assert.deepEqual(s.end(), [{ kind: 'content', text: '  <th' }]);

  const r = new ThinkSplitter({ startInside: true });
  assert.deepEqual(r.push('abc</thi'), [{ kind: 'reasoning', text: 'abc' }]);
  assert.deepEqual(r.push('x'), [{ kind: 'reasoning', text: '</thix' }]);
  assert.deepEqual(r.push('<'), []);
  assert.deepEqual(r.end(), [{ kind: 'reasoning', text: '<' }]);

  const c = new ThinkSplitter({ startInside: false });
  assert.deepEqual(c.push('<b>'), [{ kind: 'content', text: '<b>' }]);
  assert.deepEqual(c.push('<th'), [{ kind: 'content', text: '<th' }]);
});

test('one push with reasoning and content yields two segments', () => {
  const s = new ThinkSplitter({ startInside: false });
  assert.deepEqual(s.push('<think>a</think>b'), [
    { kind: 'reasoning', text: 'a' },
    { kind: 'content', text: 'b' },
  ]);
  assert.deepEqual(s.push('c'), [{ kind: 'content', text: 'c' }]);
  assert.deepEqual(s.push(''), []);
});

test('unclosed think block stays reasoning', () => {
  everySplit('<think>still thinking', [{ kind: 'reasoning', text: 'still thinking' }]);
});

test('splitThinkText handles both forms and plain text', () => {
  assert.deepEqual(splitThinkText('<think>\nr1\n</think>\n\nanswer'), { reasoning: 'r1\n', content: 'answer' });
  assert.deepEqual(splitThinkText('  <think>r</think>a'), { reasoning: 'r', content: 'a' });
  assert.deepEqual(splitThinkText('reasoning only closed</think>\nanswer'), {
    reasoning: 'reasoning only closed',
    content: 'answer',
  });
  assert.deepEqual(splitThinkText('plain'), { reasoning: '', content: 'plain' });
  assert.deepEqual(splitThinkText('a <think>b</think> c'), { reasoning: '', content: 'a <think>b</think> c' });
  assert.deepEqual(splitThinkText('<think>truncated'), { reasoning: 'truncated', content: '' });
  assert.deepEqual(splitThinkText(''), { reasoning: '', content: '' });
});
