/**
 * Properties of pass-through (issue 13), over generated answers of one to
 * three choices with refusals, annotations, logprobs, unknown message fields
 * and top-level provider fields: conversion loses nothing in either
 * direction, and a normalized stream of interleaved choices aggregates to
 * every choice's own answer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CompletionAggregator, explodeCompletion } from '../../src/core/openai/convert.js';
import { StreamNormalizer, normalizeCompletion, type NormalizeOptions } from '../../src/core/openai/normalize.js';
import type { ChatCompletion, ChatCompletionChunk, JsonObject } from '../../src/core/types.js';

const RUNS = { numRuns: 200, seed: 20261204 };

const opts: NormalizeOptions = {
  reasoning: 'field',
  thinkOpen: false,
  includeUsage: true,
  fallbackId: 'chatcmpl-fallback',
  fallbackCreated: 111,
  fallbackModel: 'fallback-model',
};

const text = fc.string({ maxLength: 12 });
const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });
const jsonish = fc.jsonValue({ maxDepth: 2 });
const tokens = fc.array(fc.record({ token: text, logprob: fc.double({ noNaN: true, noDefaultInfinity: true, max: 0 }), bytes: fc.array(fc.nat(255), { maxLength: 3 }) }), { maxLength: 3 });

const rawChoice = fc.record({
  content: maybe(text),
  refusal: maybe(text),
  annotations: maybe(fc.array(fc.record({ type: fc.constant('url_citation'), url_citation: fc.record({ url: text, title: text, start_index: fc.nat(9), end_index: fc.nat(9) }) }), { maxLength: 2 })),
  extras: fc.dictionary(fc.constantFrom('audio', 'x_vendor', 'function_call'), jsonish.filter((v) => v !== null), { maxKeys: 2 }),
  tool: maybe(fc.record({ id: fc.stringMatching(/^call_[a-z0-9]{4}$/), name: fc.stringMatching(/^[a-z_]{1,8}$/), args: text })),
  logprobs: maybe(tokens),
  finish: fc.constantFrom('stop', 'length', 'tool_calls', 'content_filter'),
});

/** A raw OpenAI-style body of 1–3 choices with top-level provider fields. */
const rawBody = fc
  .record({
    choices: fc.array(rawChoice, { minLength: 1, maxLength: 3 }),
    top: fc.dictionary(fc.constantFrom('system_fingerprint', 'service_tier', 'citations', 'provider', 'x_custom'), jsonish, { maxKeys: 3 }),
    usage: maybe(fc.record({ prompt_tokens: fc.nat(), completion_tokens: fc.nat(), total_tokens: fc.nat(), prompt_tokens_details: fc.record({ cached_tokens: fc.nat() }), cost: fc.double({ min: 0, max: 1, noNaN: true }) })),
  })
  .map(({ choices, top, usage }) => {
    const body: JsonObject = {
      id: 'chatcmpl-x',
      object: 'chat.completion',
      created: 5,
      model: 'm',
      choices: choices.map((c, index) => ({
        index,
        message: {
          role: 'assistant',
          content: c.content ?? null,
          ...(c.refusal !== undefined ? { refusal: c.refusal } : {}),
          ...(c.annotations ? { annotations: c.annotations } : {}),
          ...(c.tool ? { tool_calls: [{ id: c.tool.id, type: 'function', function: { name: c.tool.name, arguments: c.tool.args } }] } : {}),
          ...c.extras,
        },
        logprobs: c.logprobs ? { content: c.logprobs, refusal: null } : null,
        finish_reason: c.finish,
      })),
      ...top,
    };
    if (usage) body.usage = usage;
    return JSON.parse(JSON.stringify(body)) as JsonObject;
  });

function aggregate(chunks: ChatCompletionChunk[]): ChatCompletion {
  const a = new CompletionAggregator();
  for (const c of chunks) a.add(c);
  return a.result();
}

describe('conversion of multi-choice answers with provider fields', () => {
  it('aggregate(explode(c)) gives c back', () => {
    fc.assert(
      fc.property(rawBody, (raw) => {
        const completion = normalizeCompletion(raw, opts)!;
        assert.equal(completion.choices.length, (raw.choices as unknown[]).length);
        assert.deepEqual(aggregate(explodeCompletion(completion, { includeUsage: true })), completion);
      }),
      RUNS,
    );
  });

  it('explode(aggregate(chunks)) gives the exploded chunks back', () => {
    fc.assert(
      fc.property(rawBody, fc.boolean(), (raw, includeUsage) => {
        const chunks = explodeCompletion(normalizeCompletion(raw, opts)!, { includeUsage });
        assert.deepEqual(explodeCompletion(aggregate(chunks), { includeUsage }), chunks);
      }),
      RUNS,
    );
  });

  it('a normalized stream of interleaved choices aggregates to the completion', () => {
    fc.assert(
      fc.property(rawBody, fc.array(fc.nat(), { minLength: 40, maxLength: 40 }), (raw, order) => {
        const completion = normalizeCompletion(raw, opts)!;
        // Each choice's upstream chunks in order; the choices interleaved in a generated order.
        const top: JsonObject = {};
        for (const [k, v] of Object.entries(completion)) if (!['id', 'object', 'created', 'model', 'choices', 'usage'].includes(k)) top[k] = v;
        const frame = (choice: JsonObject): JsonObject => ({ id: completion.id, created: completion.created, model: completion.model, ...top, choices: [choice] });
        const queues = completion.choices.map((c) => {
          const { role: _role, content, tool_calls: calls, ...rest } = c.message;
          const q: JsonObject[] = [frame({ index: c.index, delta: { role: 'assistant', ...rest }, logprobs: c.logprobs, finish_reason: null })];
          if (content) for (const piece of [content.slice(0, 3), content.slice(3)]) if (piece) q.push(frame({ index: c.index, delta: { content: piece }, finish_reason: null }));
          (calls ?? []).forEach((tc, i) => q.push(frame({ index: c.index, delta: { tool_calls: [{ index: i, id: tc.id, type: 'function', function: tc.function }] }, finish_reason: null })));
          q.push(frame({ index: c.index, delta: {}, finish_reason: c.finish_reason }));
          return q;
        });
        const upstream: JsonObject[] = [];
        let k = 0;
        while (queues.some((q) => q.length > 0)) {
          const live = queues.filter((q) => q.length > 0);
          upstream.push(live[(order[k++ % order.length] ?? 0) % live.length]!.shift()!);
        }
        if (completion.usage) upstream.push({ id: completion.id, created: 5, model: 'm', choices: [], usage: completion.usage });
        const normalizer = new StreamNormalizer(opts);
        const out: ChatCompletionChunk[] = [];
        for (const u of upstream) out.push(...normalizer.push(u));
        out.push(...normalizer.end());
        const streamed = aggregate(out);
        assert.deepEqual(streamed.choices.map((c) => c.index), completion.choices.map((c) => c.index));
        for (const [i, c] of completion.choices.entries()) {
          const s = streamed.choices[i]!;
          const { refusal, ...message } = c.message;
          const { refusal: streamedRefusal, ...streamedMessage } = s.message;
          // An empty refusal says nothing and is not streamed.
          assert.equal(streamedRefusal ?? null, refusal === '' ? null : (refusal ?? null));
          assert.deepEqual(streamedMessage, message);
          assert.deepEqual(s.logprobs, c.logprobs);
          // A finished choice with tool calls reports tool_calls for a `stop` (Gemini).
          if (!(c.finish_reason === 'stop' && c.message.tool_calls)) assert.equal(s.finish_reason, c.finish_reason);
        }
        for (const key of Object.keys(top)) assert.deepEqual(streamed[key], top[key]);
        assert.deepEqual(streamed.usage, completion.usage);
      }),
      RUNS,
    );
  });
});
