import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompletionAggregator, explodeCompletion } from '../../src/core/openai/convert.js';
import { normalizeCompletion } from '../../src/core/openai/normalize.js';
import type { ChatCompletion, ChatCompletionChunk } from '../../src/core/types.js';

function aggregate(chunks: ChatCompletionChunk[]): ChatCompletion {
  const a = new CompletionAggregator();
  for (const c of chunks) a.add(c);
  return a.result();
}

function completion(message: ChatCompletion['choices'][number]['message'], extra: Partial<ChatCompletion> = {}): ChatCompletion {
  return {
    id: 'chatcmpl-x',
    object: 'chat.completion',
    created: 1700000000,
    model: 'model-a',
    choices: [{ index: 0, message, logprobs: null, finish_reason: 'stop' }],
    ...extra,
  };
}

const usage = { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12, prompt_tokens_details: { cached_tokens: 0 } };

const CASES: Array<[string, ChatCompletion]> = [
  ['content only', completion({ role: 'assistant', content: 'Hello!' })],
  ['reasoning + content', completion({ role: 'assistant', content: 'Answer', reasoning_content: 'Think' })],
  [
    'tool calls only, with usage',
    {
      ...completion({
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } },
          { id: 'call_2', type: 'function', function: { name: 'g', arguments: '' } },
        ],
      }),
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } },
              { id: 'call_2', type: 'function', function: { name: 'g', arguments: '' } },
            ],
          },
          logprobs: null,
          finish_reason: 'tool_calls',
        },
      ],
      usage,
    },
  ],
  [
    'everything, with refusal, reasoning_details, logprobs and usage',
    {
      ...completion({
        role: 'assistant',
        content: 'Done',
        refusal: null,
        reasoning_content: 'Plan',
        reasoning_details: [{ type: 'reasoning.text', text: 'Plan', signature: 's' }],
        tool_calls: [{ id: 'call_9', type: 'function', function: { name: 'h', arguments: '{}' } }],
      }),
      usage,
    },
  ],
  ['empty reasoning-only, length', { ...completion({ role: 'assistant', content: null, reasoning_content: 'r' }), choices: [{ index: 0, message: { role: 'assistant', content: null, reasoning_content: 'r' }, logprobs: { content: [{ token: 'r', logprob: -1 }] }, finish_reason: 'length' }] }],
];

for (const [name, c] of CASES) {
  test(`explode/aggregate round trip: ${name}`, () => {
    const chunks = explodeCompletion(c, { includeUsage: true });
    assert.deepEqual(aggregate(chunks), c);
  });
}

test('explode: chunk sequence and shapes', () => {
  const c = CASES[3]![1];
  const chunks = explodeCompletion(c, { includeUsage: true });
  for (const ch of chunks) {
    assert.equal(ch.id, 'chatcmpl-x');
    assert.equal(ch.created, 1700000000);
    assert.equal(ch.model, 'model-a');
    assert.equal(ch.object, 'chat.completion.chunk');
  }
  assert.deepEqual(
    chunks.map((ch) => ch.choices[0]?.delta ?? null),
    [
      { role: 'assistant', content: '', refusal: null },
      { reasoning_content: 'Plan', reasoning_details: [{ type: 'reasoning.text', text: 'Plan', signature: 's' }] },
      { content: 'Done' },
      { tool_calls: [{ index: 0, id: 'call_9', type: 'function', function: { name: 'h', arguments: '{}' } }] },
      {},
      null,
    ],
  );
  assert.deepEqual(chunks.map((ch) => ch.choices[0]?.finish_reason ?? null), [null, null, null, null, 'stop', null]);
  assert.deepEqual(chunks.at(-1), { id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 1700000000, model: 'model-a', choices: [], usage });
  for (const ch of chunks.slice(0, -1)) assert.equal(ch.choices[0]!.logprobs, null);
});

test('explode: usage chunk only with includeUsage', () => {
  const c = CASES[2]![1];
  const without = explodeCompletion(c, { includeUsage: false });
  assert.equal(without.some((ch) => ch.choices.length === 0 || ch.usage !== undefined), false);
  assert.equal(without.at(-1)!.choices[0]!.finish_reason, 'tool_calls');
  const withU = explodeCompletion(c, { includeUsage: true });
  assert.equal(withU.length, without.length + 1);
});

test('round trip through normalizeCompletion output', () => {
  const raw = {
    id: 'r',
    created: 5,
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content: '<think>hm</think>\n\nYes', refusal: null, annotations: [] }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  };
  for (const reasoning of ['field', 'tags', 'strip'] as const) {
    const c = normalizeCompletion(raw, {
      reasoning,
      thinkOpen: false,
      includeUsage: true,
      fallbackId: 'f',
      fallbackCreated: 0,
      fallbackModel: 'fm',
    })!;
    assert.deepEqual(aggregate(explodeCompletion(c, { includeUsage: true })), c);
  }
});

test('aggregator: openai-style accumulation, usage from any chunk, non-null finish', () => {
  const base = { id: 'a', object: 'chat.completion.chunk' as const, created: 1, model: 'm' };
  const chunks: ChatCompletionChunk[] = [
    { ...base, choices: [{ index: 0, delta: { role: 'assistant', reasoning_content: 'r1' }, logprobs: null, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { reasoning_content: 'r2', reasoning_details: [1] }, logprobs: null, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { reasoning_details: [2] }, logprobs: null, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { content: 'c1' }, logprobs: null, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 1, id: 'b', type: 'function', function: { name: 'g', arguments: '{' } }] }, logprobs: null, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'a', type: 'function', function: { name: 'f', arguments: '' } }] }, logprobs: null, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 1, function: { arguments: '}' } }] }, logprobs: null, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { content: 'c2' }, logprobs: null, finish_reason: null }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } },
  ];
  const r = aggregate(chunks);
  assert.deepEqual(r, {
    id: 'a',
    object: 'chat.completion',
    created: 1,
    model: 'm',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: 'c1c2',
          reasoning_content: 'r1r2',
          reasoning_details: [1, 2],
          tool_calls: [
            { id: 'a', type: 'function', function: { name: 'f', arguments: '' } },
            { id: 'b', type: 'function', function: { name: 'g', arguments: '{}' } },
          ],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
  const empty = new CompletionAggregator({ id: 'x', created: 2, model: 'y' }).result();
  assert.equal(empty.choices[0]!.finish_reason, 'stop');
  assert.equal(empty.choices[0]!.message.content, null);
  assert.equal(empty.id, 'x');
});
