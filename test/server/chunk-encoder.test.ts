/**
 * The hand-written SSE encoding of chat chunks must be byte for byte what
 * `JSON.stringify` writes, for everything the engine emits and for anything
 * it might emit one day (then through the general path).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { StreamNormalizer } from '../../src/core/openai/normalize.js';
import type { ChatCompletionChunk, JsonObject, ReasoningMode } from '../../src/core/types.js';
import { ChunkEncoder } from '../../src/server/chunk-encoder.js';

const RUNS = { numRuns: 300, seed: 20261126 };

const reference = (chunk: unknown): string => `data: ${JSON.stringify(chunk)}\n\n`;

function normalized(upstream: JsonObject[], reasoning: ReasoningMode = 'field'): ChatCompletionChunk[] {
  const normalizer = new StreamNormalizer({
    reasoning,
    thinkOpen: false,
    includeUsage: false,
    fallbackId: 'chatcmpl-fallback',
    fallbackCreated: 1,
    fallbackModel: 'fallback-model',
  });
  return [...upstream.flatMap((raw) => normalizer.push(raw)), ...normalizer.end()];
}

const upstreamChunk = (delta: JsonObject, finish: string | null = null): JsonObject => ({
  id: 'chatcmpl-"quoted"\u2028',
  object: 'chat.completion.chunk',
  created: 1_700_000_000,
  model: 'vendor/model:free',
  system_fingerprint: 'fp_1',
  choices: [{ index: 0, delta, finish_reason: finish }],
});

describe('ChunkEncoder', () => {
  for (const mode of ['field', 'tags', 'strip'] as const) {
    it(`writes what JSON.stringify writes for content, reasoning, tool calls and finish chunks (reasoning: ${mode})`, () => {
      const chunks = normalized(
        [
          upstreamChunk({ role: 'assistant', reasoning: 'think "hard"' }),
          upstreamChunk({ content: 'Hello\n<b>wörld</b> 🎉' }),
          upstreamChunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":' } }] }),
          upstreamChunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }),
          upstreamChunk({}, 'tool_calls'),
        ],
        mode,
      );
      assert.ok(chunks.length >= 4);
      const encoder = new ChunkEncoder();
      for (const chunk of chunks) assert.equal(encoder.encode(chunk), reference(chunk));
    });
  }

  it('writes what JSON.stringify writes for any delta, identity and finish reason', () => {
    const text = fc.string({ unit: 'binary', maxLength: 20 });
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            id: text,
            model: text,
            created: fc.integer(),
            index: fc.nat(4),
            delta: fc.dictionary(text, fc.jsonValue({ maxDepth: 2 })),
            logprobs: fc.oneof(fc.constant(null), fc.dictionary(text, fc.jsonValue({ maxDepth: 1 }))),
            finish: fc.oneof(fc.constant(null), text),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        (specs) => {
          const encoder = new ChunkEncoder();
          for (const s of specs) {
            const chunk = {
              id: s.id,
              object: 'chat.completion.chunk',
              created: s.created,
              model: s.model,
              choices: [{ index: s.index, delta: s.delta, logprobs: s.logprobs, finish_reason: s.finish }],
            } as ChatCompletionChunk;
            assert.equal(encoder.encode(chunk), reference(chunk));
          }
        },
      ),
      RUNS,
    );
  });

  it('writes what JSON.stringify writes for any chunk shape: extra top-level keys, key orders, several choices', () => {
    const text = fc.string({ unit: 'binary', maxLength: 12 });
    const choice = fc.record(
      {
        index: fc.oneof(fc.nat(4), fc.constant(-0), fc.double()),
        delta: fc.oneof(fc.dictionary(text, fc.jsonValue({ maxDepth: 2 })), fc.constant(null)),
        logprobs: fc.oneof(fc.constant(null), fc.constant(undefined), fc.dictionary(text, fc.jsonValue({ maxDepth: 1 }))),
        finish_reason: fc.oneof(fc.constant(null), fc.constant(undefined), text),
      },
      { requiredKeys: ['index', 'delta'] },
    );
    const extra = fc.dictionary(
      fc.oneof(fc.constantFrom('system_fingerprint', 'service_tier', 'citations', 'provider', 'usage', 'obfuscation', '0', 'id'), text),
      fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)),
      { maxKeys: 4 },
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            id: text,
            model: text,
            created: fc.oneof(fc.integer(), fc.double()),
            choices: fc.array(choice, { maxLength: 2 }),
            extra,
            shuffle: fc.boolean(),
            choiceOrder: fc.boolean(),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        (specs) => {
          const encoder = new ChunkEncoder();
          for (const s of specs) {
            const choices = s.choices.map((c) =>
              s.choiceOrder ? c : { finish_reason: c.finish_reason, logprobs: c.logprobs, delta: c.delta, index: c.index },
            );
            const head = { id: s.id, object: 'chat.completion.chunk', created: s.created, model: s.model, choices };
            const chunk = (s.shuffle ? { ...s.extra, ...head } : { ...head, ...s.extra }) as unknown as ChatCompletionChunk;
            assert.equal(encoder.encode(chunk), reference(chunk));
          }
        },
      ),
      RUNS,
    );
  });

  it('keeps every key of a chunk that is not of the normalized shape', () => {
    const encoder = new ChunkEncoder();
    const usage: ChatCompletionChunk = {
      id: 'c',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'm',
      choices: [],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    };
    const extra = {
      id: 'c',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'm',
      system_fingerprint: 'fp',
      choices: [{ index: 0, delta: { content: 'x' }, logprobs: null, finish_reason: null }],
    } as ChatCompletionChunk;
    const extraInChoice = {
      id: 'c',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'm',
      choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null, native_finish_reason: null }],
    } as unknown as ChatCompletionChunk;
    for (const chunk of [usage, extra, extraInChoice]) assert.equal(encoder.encode(chunk), reference(chunk));
    assert.match(encoder.encode(extra), /"system_fingerprint":"fp"/);
  });
});
