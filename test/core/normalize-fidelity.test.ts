/**
 * The normalizer's pass-through (issue 13): per-choice state for `n > 1`,
 * logprobs on the chunk that carries their tokens, top-level and delta
 * fields it does not model, and what the client stream keeps of them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientStream } from '../../src/core/client-stream.js';
import { StreamNormalizer, type NormalizeOptions } from '../../src/core/openai/normalize.js';
import type { ChatCompletionChunk, JsonObject, Usage } from '../../src/core/types.js';
import { sumUsage } from '../../src/core/usage.js';

const opts = (over: Partial<NormalizeOptions> = {}): NormalizeOptions => ({
  reasoning: 'field',
  thinkOpen: false,
  includeUsage: true,
  fallbackId: 'chatcmpl-fallback',
  fallbackCreated: 1,
  fallbackModel: 'm',
  ...over,
});

const up = (choices: JsonObject[], top: JsonObject = {}): JsonObject => ({ id: 'up', object: 'chat.completion.chunk', created: 5, model: 'gpt', ...top, choices });
const ch = (index: number, delta: JsonObject, finish: string | null = null, logprobs: unknown = null): JsonObject => ({ index, delta, logprobs, finish_reason: finish });

function run(chunks: JsonObject[], o: Partial<NormalizeOptions> = {}): { n: StreamNormalizer; out: ChatCompletionChunk[] } {
  const n = new StreamNormalizer(opts(o));
  const out: ChatCompletionChunk[] = [];
  for (const c of chunks) out.push(...n.push(c));
  out.push(...n.end());
  return { n, out };
}

const lp = (...tokens: string[]) => ({ content: tokens.map((token) => ({ token, logprob: -1, bytes: [...Buffer.from(token)], top_logprobs: [] })), refusal: null });

describe('StreamNormalizer: n > 1', () => {
  it('keeps one tool-slot state per choice (both choices use upstream tool index 0)', () => {
    const { out } = run([
      up([ch(0, { tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'f', arguments: '' } }] })]),
      up([ch(1, { tool_calls: [{ index: 0, id: 'call_b', type: 'function', function: { name: 'g', arguments: '' } }] })]),
      up([ch(0, { tool_calls: [{ index: 0, function: { arguments: '{"a":1}' } }] })]),
      up([ch(1, { tool_calls: [{ index: 0, function: { arguments: '{"b":2}' } }] })]),
      up([ch(0, {}, 'tool_calls'), ch(1, {}, 'tool_calls')]),
    ]);
    const calls = (index: number) => out.flatMap((c) => (c.choices[0]?.index === index ? (c.choices[0].delta.tool_calls ?? []) : []));
    assert.deepEqual(calls(0), [
      { index: 0, id: 'call_a', type: 'function', function: { name: 'f', arguments: '' } },
      { index: 0, function: { arguments: '{"a":1}' } },
    ]);
    assert.deepEqual(calls(1), [
      { index: 0, id: 'call_b', type: 'function', function: { name: 'g', arguments: '' } },
      { index: 0, function: { arguments: '{"b":2}' } },
    ]);
    // One output chunk per choice, even from an upstream chunk that carries both.
    for (const c of out) assert.ok(c.choices.length <= 1);
  });

  it('is finished only when every choice seen has a finish_reason', () => {
    const n = new StreamNormalizer(opts());
    n.push(up([ch(0, { content: 'a' }), ch(1, { content: 'b' })]));
    n.push(up([ch(0, {}, 'stop')]));
    assert.equal(n.finishReason, null);
    n.push(up([ch(1, {}, 'length')]));
    assert.equal(n.finishReason, 'stop');
    assert.ok(n.multiChoice);
  });
});

describe('StreamNormalizer: logprobs and fields it does not model', () => {
  it('puts logprobs on the chunk that carries their tokens, and holds them with held text', () => {
    const { out } = run([up([ch(0, { role: 'assistant', content: 'a' }, null, lp('a'))]), up([ch(0, {}, 'stop')])]);
    assert.deepEqual(out[0]?.choices[0]?.logprobs, lp('a'));
    assert.equal(out[1]?.choices[0]?.logprobs, null);
    // `<thi` at the start could open a tag: the splitter holds it, and its logprobs wait with it.
    const held = run([up([ch(0, { content: '<thi' }, null, lp('<thi'))]), up([ch(0, { content: 's is' }, null, lp('s', ' is'))]), up([ch(0, {}, 'stop')])]).out;
    const withText = held.filter((c) => typeof c.choices[0]?.delta.content === 'string');
    assert.deepEqual(
      withText.map((c) => [c.choices[0]?.delta.content, (c.choices[0]?.logprobs as { content: Array<{ token: string }> }).content.map((t) => t.token).join('')]),
      [['<this is', '<this is']],
    );
  });

  it('puts top-level fields on every chunk made from the upstream chunk, or on the next one made', () => {
    const fp = { system_fingerprint: 'fp_1', service_tier: 'default' };
    const { out } = run([
      // Emits nothing (empty content, null refusal): its fields wait.
      up([ch(0, { role: 'assistant', content: '', refusal: null })], { citations: ['https://a.example'], ...fp }),
      up([ch(0, { content: 'x' }), ch(1, { content: 'y' })], fp),
      up([ch(0, {}, 'stop'), ch(1, {}, 'stop')], { provider: 'Fireworks' }),
      up([], { ...fp, usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }),
    ]);
    const top = (c: ChatCompletionChunk) => Object.fromEntries(Object.entries(c).filter(([k]) => !['id', 'object', 'created', 'model', 'choices', 'usage'].includes(k)));
    assert.deepEqual(
      out.map((c) => top(c)),
      [{ citations: ['https://a.example'], ...fp }, fp, { provider: 'Fireworks' }, { provider: 'Fireworks' }, fp],
    );
    assert.deepEqual(out.at(-1)?.usage, { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
  });

  it('passes unknown delta fields on and drops null ones', () => {
    const annotations = [{ type: 'url_citation', url_citation: { start_index: 0, end_index: 1, url: 'https://a.example', title: 'A' } }];
    const { out } = run([
      up([ch(0, { role: 'assistant', content: 'A', refusal: null, audio: { id: 'audio_1', transcript: 'A' }, x_null: null })]),
      up([ch(0, { annotations })]),
      up([ch(0, {}, 'stop')]),
    ]);
    assert.deepEqual(out[0]?.choices[0]?.delta, { role: 'assistant', content: 'A', audio: { id: 'audio_1', transcript: 'A' } });
    assert.deepEqual(out[1]?.choices[0]?.delta, { annotations });
  });

  it('a refusal alone is not a token, and says it refused', () => {
    const { n, out } = run([up([ch(0, { role: 'assistant', refusal: '' })]), up([ch(0, { refusal: 'No' })]), up([ch(0, { refusal: '.' }, 'stop')])]);
    assert.equal(n.hasToken, false);
    assert.equal(n.refused, true);
    assert.equal(out.map((c) => c.choices[0]?.delta.refusal ?? '').join(''), 'No.');
  });
});

describe('ClientStream', () => {
  const chunk = (index: number, delta: JsonObject): ChatCompletionChunk => ({
    id: 'c',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: [{ index, delta, logprobs: null, finish_reason: null }],
  });

  it('does not resume a multi-choice stream, and keeps each choice its role', () => {
    const client = new ClientStream(true);
    client.stamp(chunk(0, { role: 'assistant', content: 'one' }));
    assert.equal(client.resumable, true);
    const second = client.stamp(chunk(1, { role: 'assistant', content: 'uno' }));
    assert.equal(second.choices[0]?.delta.role, 'assistant');
    assert.equal(client.resumable, false);
    assert.equal(client.content, '');
  });

  it('keeps usage details as given for one attempt, and sums every number over resumed ones', () => {
    const first: Usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, prompt_tokens_details: { cached_tokens: 4 }, cost: 0.5 };
    const client = new ClientStream(true);
    client.addUsage(first);
    assert.deepEqual(client.usage, first);
    client.addUsage({ prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, prompt_tokens_details: { cached_tokens: 2 }, completion_tokens_details: { reasoning_tokens: 1 }, cost: 0.25 });
    assert.deepEqual(client.usage, {
      prompt_tokens: 22,
      completion_tokens: 8,
      total_tokens: 30,
      prompt_tokens_details: { cached_tokens: 6 },
      completion_tokens_details: { reasoning_tokens: 1 },
      cost: 0.75,
    });
    // What the first attempt reported is not changed under it.
    assert.deepEqual(first.prompt_tokens_details, { cached_tokens: 4 });
  });

  it('sumUsage leaves strings as the first gave them', () => {
    const into: Usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, model_tier: 'a' };
    sumUsage(into, { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, model_tier: 'b' });
    assert.equal(into.model_tier, 'a');
    assert.equal(into.total_tokens, 4);
  });
});
