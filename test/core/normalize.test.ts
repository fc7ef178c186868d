import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StreamNormalizer,
  completionHasOutput,
  normalizeCompletion,
} from '../../src/core/openai/normalize.js';
import type { NormalizeOptions } from '../../src/core/openai/normalize.js';
import { CompletionAggregator } from '../../src/core/openai/convert.js';
import type { ChatCompletionChunk, JsonObject, ReasoningMode } from '../../src/core/types.js';

function opts(over: Partial<NormalizeOptions> = {}): NormalizeOptions {
  return {
    reasoning: 'field',
    thinkOpen: false,
    includeUsage: false,
    fallbackId: 'chatcmpl-fallback',
    fallbackCreated: 111,
    fallbackModel: 'fallback-model',
    ...over,
  };
}

function up(delta: JsonObject, finish: string | null = null, extra: JsonObject = {}): JsonObject {
  return {
    id: 'up-1',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'up-model',
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...extra,
  };
}

function runStream(chunks: JsonObject[], o: Partial<NormalizeOptions> = {}) {
  const n = new StreamNormalizer(opts(o));
  const out: ChatCompletionChunk[] = [];
  for (const c of chunks) out.push(...n.push(c));
  out.push(...n.end());
  return { n, out };
}

function deltas(out: ChatCompletionChunk[]) {
  return out.filter((c) => c.choices.length > 0).map((c) => c.choices[0]!.delta);
}

function aggregate(out: ChatCompletionChunk[]) {
  const a = new CompletionAggregator();
  for (const c of out) a.add(c);
  return a.result();
}

/** Shape checks that must hold for every normalized stream. */
function checkInvariants(out: ChatCompletionChunk[]): void {
  const first = out[0];
  if (first === undefined) return;
  let finishes = 0;
  out.forEach((c, i) => {
    assert.equal(c.id, first.id);
    assert.equal(c.created, first.created);
    assert.equal(c.model, first.model);
    assert.equal(c.object, 'chat.completion.chunk');
    if (c.choices.length === 0) {
      assert.ok(c.usage, 'choices: [] only for usage');
      return;
    }
    assert.equal(c.choices.length, 1);
    const ch = c.choices[0]!;
    assert.equal(ch.index, 0);
    assert.equal(ch.logprobs, null);
    if (i === 0) assert.equal(ch.delta.role, 'assistant');
    else assert.equal(ch.delta.role, undefined);
    const hasContent = typeof ch.delta.content === 'string' && ch.delta.content !== '';
    const hasReasoning = typeof ch.delta.reasoning_content === 'string' && ch.delta.reasoning_content !== '';
    assert.ok(!(hasContent && hasReasoning), 'never reasoning and content in one delta');
    assert.equal(ch.delta.reasoning, undefined);
    if (ch.finish_reason !== null) {
      finishes++;
      assert.deepEqual(Object.keys(ch.delta).filter((k) => k !== 'role'), []);
    }
    for (const tc of ch.delta.tool_calls ?? []) {
      assert.equal(typeof tc.index, 'number');
      assert.equal(typeof tc.function, 'object');
    }
  });
  assert.ok(finishes <= 1);
}

test('plain content: role on the first delta only, identity constant, empty deltas skipped', () => {
  const { n, out } = runStream([
    up({ role: 'assistant', content: '' }),
    up({ content: 'Hel' }),
    up({ content: 'lo' }, null, { id: 'other', model: 'other' }),
    up({}, 'stop'),
  ]);
  checkInvariants(out);
  assert.deepEqual(deltas(out), [{ role: 'assistant', content: 'Hel' }, { content: 'lo' }, {}]);
  assert.equal(out[0]!.id, 'up-1');
  assert.equal(out[0]!.model, 'up-model');
  assert.equal(out[0]!.created, 1700000000);
  assert.equal(out.at(-1)!.choices[0]!.finish_reason, 'stop');
  assert.equal(n.finishReason, 'stop');
  assert.equal(n.hasToken, true);
});

test('identity falls back when the upstream has none', () => {
  const { n, out } = runStream([{ choices: [{ delta: { content: 'x' }, finish_reason: 'stop' }] }]);
  checkInvariants(out);
  assert.equal(out[0]!.id, 'chatcmpl-fallback');
  assert.equal(out[0]!.created, 111);
  assert.equal(out[0]!.model, 'fallback-model');
  assert.equal(n.id, 'chatcmpl-fallback');
});

test('hasToken stays false for role-only, empty and comment-like chunks', () => {
  const n = new StreamNormalizer(opts());
  assert.deepEqual(n.push(up({ role: 'assistant' })), []);
  assert.deepEqual(n.push(up({ content: '' })), []);
  assert.deepEqual(n.push({ choices: [] }), []);
  assert.equal(n.hasToken, false);
});

const REASONING_FORMS: Array<[string, JsonObject[], boolean]> = [
  ['reasoning_content', [up({ reasoning_content: 'Let me ' }), up({ reasoning_content: 'think.' }), up({ content: 'Answer.' })], false],
  ['reasoning', [up({ reasoning: 'Let me ' }), up({ reasoning: 'think.' }), up({ content: 'Answer.' })], false],
  [
    'reasoning_details',
    [
      up({ reasoning_details: [{ type: 'reasoning.text', text: 'Let me ' }] }),
      up({ reasoning_details: [{ type: 'reasoning.summary', summary: 'think.' }] }),
      up({ content: 'Answer.' }),
    ],
    false,
  ],
  ['tags', [up({ content: '<think>\nLet me ' }), up({ content: 'think.</th' }), up({ content: 'ink>\n\nAnswer.' })], false],
  ['open tag missing', [up({ content: 'Let me ' }), up({ content: 'think.</think>' }), up({ content: '\nAnswer.' })], true],
  ['both in one delta', [up({ reasoning_content: 'Let me think.', content: 'Answer.' })], false],
];

for (const [form, chunks, thinkOpen] of REASONING_FORMS) {
  for (const mode of ['field', 'tags', 'strip'] as ReasoningMode[]) {
    test(`reasoning via ${form} in ${mode} mode`, () => {
      const { n, out } = runStream([...chunks, up({}, 'stop')], { reasoning: mode, thinkOpen });
      checkInvariants(out);
      assert.equal(n.hasToken, true);
      const c = aggregate(out).choices[0]!.message;
      if (mode === 'field') {
        assert.equal(c.reasoning_content, 'Let me think.');
        assert.equal(c.content, 'Answer.');
      } else if (mode === 'tags') {
        assert.equal(c.reasoning_content, undefined);
        assert.equal(c.content, '<think>Let me think.</think>\n\nAnswer.');
      } else {
        assert.equal(c.reasoning_content, undefined);
        assert.equal(c.content, 'Answer.');
      }
      const withDetails = deltas(out).some((d) => d.reasoning_details !== undefined);
      assert.equal(withDetails, mode === 'field' && form === 'reasoning_details');
    });
  }
}

test('reasoning_details pass through untouched; text not doubled when reasoning is also sent', () => {
  const details = [{ type: 'reasoning.text', text: 'abc', signature: 'sig' }];
  const enc = [{ type: 'reasoning.encrypted', data: 'xyz' }];
  const { out } = runStream([
    up({ reasoning: 'abc', reasoning_details: details }),
    up({ reasoning_details: enc }),
    up({ content: 'ok' }, 'stop'),
  ]);
  checkInvariants(out);
  const d = deltas(out);
  assert.deepEqual(d[0], { role: 'assistant', reasoning_content: 'abc', reasoning_details: details });
  assert.equal(d[0]!.reasoning_details, details);
  assert.deepEqual(d[1], { reasoning_details: enc });
  const m = aggregate(out).choices[0]!.message;
  assert.equal(m.reasoning_content, 'abc');
  assert.deepEqual(m.reasoning_details, [...details, ...enc]);
});

test('reasoning only, then finish in tags mode closes the tag; strip mode still counts a token', () => {
  const tags = runStream([up({ reasoning_content: 'r' }), up({}, 'length')], { reasoning: 'tags' });
  checkInvariants(tags.out);
  assert.deepEqual(deltas(tags.out), [
    { role: 'assistant', content: '<think>r' },
    { content: '</think>\n\n' },
    {},
  ]);
  const strip = runStream([up({ reasoning_content: 'r' })], { reasoning: 'strip' });
  assert.equal(strip.n.hasToken, true);
  assert.deepEqual(strip.out, []);
});

test('think tags split across chunks at every position, both modes of thinkOpen', () => {
  const text = '<think>abc</think>\n\nxyz';
  for (let a = 1; a < text.length; a++) {
    const { out } = runStream([up({ content: text.slice(0, a) }), up({ content: text.slice(a) }), up({}, 'stop')]);
    checkInvariants(out);
    const m = aggregate(out).choices[0]!.message;
    assert.equal(m.reasoning_content, 'abc', `cut ${a}`);
    assert.equal(m.content, 'xyz', `cut ${a}`);
  }
});

test('held tag text is flushed at finish and at end without finish', () => {
  const { n, out } = runStream([up({ content: '<th' })]);
  assert.equal(n.finishReason, null);
  assert.deepEqual(deltas(out), [{ role: 'assistant', content: '<th' }]);
  const r = runStream([up({ content: 'abc</thi' }), up({}, 'stop')], { thinkOpen: true });
  assert.deepEqual(deltas(r.out), [{ role: 'assistant', reasoning_content: 'abc' }, { reasoning_content: '</thi' }, {}]);
});

test('thinkOpen is ignored once the upstream reasons in a field', () => {
  const { out } = runStream([up({ reasoning_content: 'r' }), up({ content: 'answer' }), up({}, 'stop')], {
    thinkOpen: true,
  });
  const m = aggregate(out).choices[0]!.message;
  assert.equal(m.content, 'answer');
  assert.equal(m.reasoning_content, 'r');
});

test('fragmented parallel tool calls (OpenAI style)', () => {
  const { out } = runStream([
    up({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_A', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
    up({ tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] }),
    up({ tool_calls: [{ index: 0, function: { arguments: 'ty":"Paris"}' } }] }),
    up({ tool_calls: [{ index: 1, id: 'call_B', type: 'function', function: { name: 'get_time', arguments: '' } }] }),
    up({ tool_calls: [{ index: 1, function: { arguments: '{}' } }] }),
    up({}, 'tool_calls'),
  ]);
  checkInvariants(out);
  assert.deepEqual(deltas(out), [
    { role: 'assistant', tool_calls: [{ index: 0, id: 'call_A', type: 'function', function: { name: 'get_weather', arguments: '' } }] },
    { tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] },
    { tool_calls: [{ index: 0, function: { arguments: 'ty":"Paris"}' } }] },
    { tool_calls: [{ index: 1, id: 'call_B', type: 'function', function: { name: 'get_time', arguments: '' } }] },
    { tool_calls: [{ index: 1, function: { arguments: '{}' } }] },
    {},
  ]);
  const m = aggregate(out).choices[0]!;
  assert.equal(m.finish_reason, 'tool_calls');
  assert.equal(m.message.content, null);
  assert.deepEqual(m.message.tool_calls, [
    { id: 'call_A', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
    { id: 'call_B', type: 'function', function: { name: 'get_time', arguments: '{}' } },
  ]);
});

test('Gemini style: no index, stop finish is forced to tool_calls, missing ids generated', () => {
  const { n, out } = runStream([
    up({ tool_calls: [{ id: 'g1', type: 'function', function: { name: 'a', arguments: '{"x":1}' } }] }),
    up({ tool_calls: [{ id: 'g2', type: 'function', function: { name: 'b', arguments: '{' } }] }),
    up({ tool_calls: [{ function: { arguments: '}' } }] }),
    up({ tool_calls: [{ type: 'function', function: { name: 'c', arguments: '{}' } }] }, 'stop'),
  ]);
  checkInvariants(out);
  assert.equal(n.finishReason, 'tool_calls');
  const calls = aggregate(out).choices[0]!.message.tool_calls!;
  assert.equal(calls.length, 3);
  assert.deepEqual(calls.slice(0, 2), [
    { id: 'g1', type: 'function', function: { name: 'a', arguments: '{"x":1}' } },
    { id: 'g2', type: 'function', function: { name: 'b', arguments: '{}' } },
  ]);
  // No id and no index but a new name: a new call (early Gemini), with a generated id.
  assert.equal(calls[2]!.function.name, 'c');
  assert.match(calls[2]!.id, /^call_[A-Za-z0-9]{24}$/);
});

test('Ollama style: index 0 for every call with different ids', () => {
  const { out } = runStream([
    up({ tool_calls: [{ index: 0, id: 'o1', function: { name: 'f', arguments: { a: 1 } } }] }),
    up({ tool_calls: [{ index: 0, id: 'o2', function: { name: 'g', arguments: '{"b":2}' } }] }),
    up({}, 'stop'),
  ]);
  checkInvariants(out);
  const idx = deltas(out).flatMap((d) => (d.tool_calls ?? []).map((t) => t.index));
  assert.deepEqual(idx, [0, 1]);
  const r = aggregate(out).choices[0]!;
  assert.equal(r.finish_reason, 'tool_calls');
  assert.deepEqual(r.message.tool_calls, [
    { id: 'o1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } },
    { id: 'o2', type: 'function', function: { name: 'g', arguments: '{"b":2}' } },
  ]);
});

test('name sent once; id repeated on every delta continues the call', () => {
  const { out } = runStream([
    up({ tool_calls: [{ index: 0, id: 'x', type: 'function', function: { name: 'search', arguments: '{"q":' } }] }),
    up({ tool_calls: [{ index: 0, id: 'x', type: 'function', function: { name: 'search', arguments: '"a"}' } }] }),
    up({}, 'tool_calls'),
  ]);
  checkInvariants(out);
  const named = deltas(out).flatMap((d) => d.tool_calls ?? []).filter((t) => t.function.name !== undefined);
  assert.equal(named.length, 1);
  assert.deepEqual(aggregate(out).choices[0]!.message.tool_calls, [
    { id: 'x', type: 'function', function: { name: 'search', arguments: '{"q":"a"}' } },
  ]);
});

test('name arriving after arguments: the call is held until the name comes', () => {
  const n = new StreamNormalizer(opts());
  assert.deepEqual(n.push(up({ tool_calls: [{ index: 0, function: { arguments: '{"a"' } }] })), []);
  assert.equal(n.hasToken, false);
  const out = n.push(up({ tool_calls: [{ index: 0, function: { name: 'late', arguments: ':1}' } }] }));
  assert.equal(n.hasToken, true);
  const tc = out[0]!.choices[0]!.delta.tool_calls![0]!;
  assert.equal(tc.index, 0);
  assert.equal(tc.type, 'function');
  assert.match(tc.id!, /^call_[A-Za-z0-9]{24}$/);
  assert.deepEqual(tc.function, { name: 'late', arguments: '{"a":1}' });
});

test('a call that never gets a name is flushed with an empty name at finish', () => {
  const { out } = runStream([up({ tool_calls: [{ index: 0, function: { arguments: '{}' } }] }), up({}, 'stop')]);
  checkInvariants(out);
  assert.deepEqual(aggregate(out).choices[0]!.message.tool_calls?.[0]?.function, { name: '', arguments: '{}' });
  assert.equal(out.at(-1)!.choices[0]!.finish_reason, 'tool_calls');
});

test('tags mode closes the think tag before tool calls', () => {
  const { out } = runStream(
    [up({ reasoning: 'plan' }), up({ tool_calls: [{ index: 0, id: 't', function: { name: 'f', arguments: '{}' } }] }, 'tool_calls')],
    { reasoning: 'tags' },
  );
  checkInvariants(out);
  assert.deepEqual(deltas(out).slice(0, 2), [
    { role: 'assistant', content: '<think>plan' },
    { content: '</think>\n\n' },
  ]);
});

test('usage: remembered from any chunk, emitted once after finish only with includeUsage', () => {
  const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
  const chunks = [up({ content: 'a' }), up({}, 'stop'), { id: 'up-1', choices: [], usage }];
  const without = runStream(chunks);
  assert.equal(without.out.some((c) => c.usage), false);
  assert.deepEqual(without.n.usage, usage);
  const withUsage = runStream(chunks, { includeUsage: true });
  checkInvariants(withUsage.out);
  const last = withUsage.out.at(-1)!;
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, usage);
  assert.equal(withUsage.out.filter((c) => c.usage).length, 1);
  assert.equal(withUsage.out.at(-2)!.choices[0]!.finish_reason, 'stop');
});

test('at most one finish; unknown finish reasons become stop; nothing after finish', () => {
  const { n, out } = runStream([up({ content: 'a' }, 'eos'), up({ content: 'b' }, 'stop')]);
  checkInvariants(out);
  assert.equal(n.finishReason, 'stop');
  assert.equal(out.filter((c) => c.choices[0]?.finish_reason).length, 1);
  assert.equal(aggregate(out).choices[0]!.message.content, 'a');
});

test('end() without finish invents none', () => {
  const { n, out } = runStream([up({ content: 'a' })], { includeUsage: true });
  assert.equal(n.finishReason, null);
  assert.equal(out.some((c) => c.choices[0]?.finish_reason), false);
});

// ---------------------------------------------------------------------------

function body(message: JsonObject, extra: JsonObject = {}): JsonObject {
  return {
    id: 'cmpl-1',
    object: 'chat.completion',
    created: 1700000001,
    model: 'm',
    choices: [{ index: 0, message, finish_reason: 'stop' }],
    ...extra,
  };
}

test('normalizeCompletion: no message -> null', () => {
  assert.equal(normalizeCompletion({ choices: [] }, opts()), null);
  assert.equal(normalizeCompletion({ choices: [{ index: 0 }] }, opts()), null);
  assert.equal(normalizeCompletion({}, opts()), null);
});

test('normalizeCompletion: reasoning forms per mode', () => {
  const forms: JsonObject[] = [
    { role: 'assistant', content: 'Answer', reasoning_content: 'Think' },
    { role: 'assistant', content: 'Answer', reasoning: 'Think' },
    { role: 'assistant', content: 'Answer', reasoning_details: [{ type: 'reasoning.text', text: 'Think' }] },
    { role: 'assistant', content: '<think>\nThink</think>\n\nAnswer' },
    { role: 'assistant', content: 'Think</think>\nAnswer' },
  ];
  for (const msg of forms) {
    const f = normalizeCompletion(body(msg), opts())!;
    assert.equal(f.choices[0]!.message.reasoning_content, 'Think');
    assert.equal(f.choices[0]!.message.content, 'Answer');
    assert.equal(f.choices[0]!.message.reasoning, undefined);
    const t = normalizeCompletion(body(msg), opts({ reasoning: 'tags' }))!;
    assert.equal(t.choices[0]!.message.content, '<think>Think</think>\n\nAnswer');
    assert.equal(t.choices[0]!.message.reasoning_content, undefined);
    assert.equal(t.choices[0]!.message.reasoning_details, undefined);
    const s = normalizeCompletion(body(msg), opts({ reasoning: 'strip' }))!;
    assert.equal(s.choices[0]!.message.content, 'Answer');
    assert.equal(s.choices[0]!.message.reasoning_content, undefined);
  }
});

test('normalizeCompletion: full shape with tool calls, usage, kept fields', () => {
  const usage = { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 };
  const c = normalizeCompletion(
    body(
      {
        role: 'assistant',
        content: null,
        refusal: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } },
          { function: { name: 'g', arguments: { b: 2 } } },
        ],
        reasoning_details: [{ type: 'reasoning.encrypted', data: 'e' }],
      },
      { usage },
    ),
    opts(),
  )!;
  assert.deepEqual(c, {
    id: 'cmpl-1',
    object: 'chat.completion',
    created: 1700000001,
    model: 'm',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          refusal: null,
          reasoning_details: [{ type: 'reasoning.encrypted', data: 'e' }],
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } },
            { id: c.choices[0]!.message.tool_calls![1]!.id, type: 'function', function: { name: 'g', arguments: '{"b":2}' } },
          ],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ],
    usage,
  });
  assert.match(c.choices[0]!.message.tool_calls![1]!.id, /^call_[A-Za-z0-9]{24}$/);
  assert.equal(completionHasOutput(c), true);
});

test('normalizeCompletion: fallbacks, missing finish, unknown finish', () => {
  const c = normalizeCompletion({ choices: [{ message: { content: 'x' } }] }, opts())!;
  assert.equal(c.id, 'chatcmpl-fallback');
  assert.equal(c.created, 111);
  assert.equal(c.model, 'fallback-model');
  assert.equal(c.choices[0]!.finish_reason, 'stop');
  const d = normalizeCompletion({ choices: [{ message: { content: 'x' }, finish_reason: 'end_turn' }] }, opts())!;
  assert.equal(d.choices[0]!.finish_reason, 'stop');
});

test('completionHasOutput: empty answers are not output; stripped reasoning is', () => {
  assert.equal(completionHasOutput(normalizeCompletion(body({ content: '' }), opts())!), false);
  assert.equal(completionHasOutput(normalizeCompletion(body({ content: null }), opts())!), false);
  assert.equal(completionHasOutput(normalizeCompletion(body({ reasoning: 'r' }), opts())!), true);
  const stripped = normalizeCompletion(body({ reasoning: 'r' }), opts({ reasoning: 'strip' }))!;
  assert.equal(stripped.choices[0]!.message.content, null);
  assert.equal(completionHasOutput(stripped), true);
  assert.equal(completionHasOutput(normalizeCompletion(body({ reasoning: 'r' }), opts({ reasoning: 'tags' }))!), true);
});
