/**
 * Stream <-> non-stream conversion, normalized output and reasoning modes,
 * through the engine (SPEC §3.5, §3.6).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChatCompletionChunk, EngineEvent, ReasoningMode } from '../../src/core/types.js';
import { chunk, completionBody, json, sse, usageChunk, wordStream } from '../helpers/fake-upstream.js';
import { chatRequest, endpoint, group, last, runAll, streamedContent, streamedReasoning } from '../helpers/groups.js';
import { testRig } from '../helpers/rig.js';

const rig = testRig();
const engine = rig.engine();
const upstream = rig.upstream;

function chunks(events: EngineEvent[]): ChatCompletionChunk[] {
  return events.flatMap((e) => (e.type === 'chunks' ? e.chunks : []));
}

function completionOf(events: EngineEvent[]) {
  const e = events.find((x) => x.type === 'completion');
  assert.ok(e && e.type === 'completion', 'a completion event');
  return e.completion;
}

const toolCallItems = [
  chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_A', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: 'ty":"Paris"}' } }] }),
  chunk({ tool_calls: [{ index: 1, id: 'call_B', type: 'function', function: { name: 'get_time', arguments: '' } }] }),
  chunk({ tool_calls: [{ index: 1, function: { arguments: '{}' } }] }),
  chunk({}, 'tool_calls'),
];

describe('client stream, endpoint stream: false (replayed as SSE)', () => {
  it('is a valid stream: role first, content, finish, no usage unless asked', async () => {
    const up = await upstream(json(completionBody('Hello there')));
    const g = group('g', [endpoint(up.baseurl, { stream: false })]);
    const events = await runAll(engine, g, chatRequest({ stream: true, stream_options: { include_usage: false } }));
    const out = chunks(events);
    assert.equal(out[0]?.choices[0]?.delta.role, 'assistant');
    assert.equal(streamedContent(events), 'Hello there');
    assert.equal(out.at(-1)?.choices[0]?.finish_reason, 'stop');
    assert.ok(out.every((c) => c.choices.length === 1), 'no usage chunk');
    assert.equal(last(events).type, 'done');
    // The upstream was called without stream and without stream_options.
    assert.equal(up.requests[0]?.body.stream, false);
    assert.ok(!('stream_options' in (up.requests[0]?.body ?? {})));
    assert.equal(up.requests[0]?.body.model, 'test-model');
  });

  it('ends with a choices: [] usage chunk when the client asked for usage', async () => {
    const up = await upstream(json(completionBody('Hi')));
    const g = group('g', [endpoint(up.baseurl, { stream: false })]);
    const out = chunks(await runAll(engine, g, chatRequest({ stream: true, stream_options: { include_usage: true } })));
    const usage = out.at(-1);
    assert.deepEqual(usage?.choices, []);
    assert.equal(usage?.usage?.total_tokens, 12);
  });

  it('replays tool calls with index, id, type and function', async () => {
    const body = completionBody(null, {
      message: { tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
      finish_reason: 'tool_calls',
    });
    const up = await upstream(json(body));
    const g = group('g', [endpoint(up.baseurl, { stream: false })]);
    const out = chunks(await runAll(engine, g, chatRequest({ stream: true })));
    const call = out.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])[0];
    assert.deepEqual(call, { index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } });
    assert.equal(out.at(-1)?.choices[0]?.finish_reason, 'tool_calls');
  });
});

describe('client non-stream, endpoint stream: true (aggregated)', () => {
  it('aggregates content, reasoning, finish_reason and usage', async () => {
    const up = await upstream(
      sse([chunk({ role: 'assistant', reasoning_content: 'Let me ' }), chunk({ reasoning_content: 'think.' }), chunk({ content: 'Four' }), chunk({}, 'stop'), usageChunk()]),
    );
    const g = group('g', [endpoint(up.baseurl, { stream: true })]);
    const completion = completionOf(await runAll(engine, g, chatRequest()));
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.choices[0]?.message.content, 'Four');
    assert.equal(completion.choices[0]?.message.reasoning_content, 'Let me think.');
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    assert.equal(completion.usage?.total_tokens, 12);
    assert.equal(up.requests[0]?.body.stream, true);
  });

  it('aggregates fragmented parallel tool calls', async () => {
    const up = await upstream(sse(toolCallItems));
    const g = group('g', [endpoint(up.baseurl, { stream: true })]);
    const message = completionOf(await runAll(engine, g, chatRequest())).choices[0]?.message;
    assert.equal(message?.content, null);
    assert.deepEqual(message?.tool_calls, [
      { id: 'call_A', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      { id: 'call_B', type: 'function', function: { name: 'get_time', arguments: '{}' } },
    ]);
  });

  it('a request without `stream` is non-streaming', async () => {
    const up = await upstream(json(completionBody('x')));
    const events = await runAll(engine, group('g', [endpoint(up.baseurl)]), chatRequest());
    assert.ok(events.some((e) => e.type === 'completion'));
    assert.ok(!events.some((e) => e.type === 'chunks'));
    assert.equal(up.requests[0]?.body.stream, false);
  });
});

describe('normalized stream output', () => {
  it('one id, created and model on every chunk; model is the upstream model', async () => {
    const up = await upstream(sse(wordStream(['a', 'b', 'c'])));
    const out = chunks(await runAll(engine, group('g', [endpoint(up.baseurl)]), chatRequest({ stream: true })));
    assert.ok(out.length >= 4);
    for (const c of out) {
      assert.equal(c.id, out[0]?.id);
      assert.equal(c.created, out[0]?.created);
      assert.equal(c.model, 'upstream-model');
      assert.equal(c.object, 'chat.completion.chunk');
    }
  });

  it('usage reaches a streaming client only when asked', async () => {
    const up = await upstream(sse(wordStream(['a'])));
    const g = group('g', [endpoint(up.baseurl)]);
    const without = chunks(await runAll(engine, g, chatRequest({ stream: true })));
    assert.ok(without.every((c) => c.choices.length > 0 && !c.usage));
    const withUsage = chunks(await runAll(engine, g, chatRequest({ stream: true, stream_options: { include_usage: true } })));
    assert.equal(withUsage.at(-1)?.usage?.total_tokens, 12);
    assert.deepEqual(withUsage.at(-1)?.choices, []);
  });

  it('repairs Ollama-style colliding indices and forces finish_reason tool_calls', async () => {
    const up = await upstream(
      sse([
        chunk({ tool_calls: [{ index: 0, id: 'a', function: { name: 'one', arguments: '{}' } }] }),
        chunk({ tool_calls: [{ index: 0, id: 'b', function: { name: 'two', arguments: '{}' } }] }),
        chunk({}, 'stop'),
      ]),
    );
    const out = chunks(await runAll(engine, group('g', [endpoint(up.baseurl)]), chatRequest({ stream: true })));
    const calls = out.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    assert.deepEqual(calls.map((c) => [c.index, c.id, c.function.name]), [[0, 'a', 'one'], [1, 'b', 'two']]);
    assert.equal(out.at(-1)?.choices[0]?.finish_reason, 'tool_calls');
  });
});

describe('reasoning modes', () => {
  const thinkStream = [
    chunk({ content: '<thi' }),
    chunk({ content: 'nk>Because ' }),
    chunk({ content: 'two.</th' }),
    chunk({ content: 'ink>\n\nFour' }),
    chunk({}, 'stop'),
  ];

  async function run(mode: ReasoningMode, items = thinkStream, stream = true, thinkOpen = false) {
    const up = await upstream(sse(items));
    const g = group('g', [endpoint(up.baseurl, { thinkOpen })], { reasoning: mode });
    return runAll(engine, g, chatRequest({ stream }));
  }

  it('field: <think> split across chunks becomes reasoning_content, never mixed with content', async () => {
    const events = await run('field');
    assert.equal(streamedReasoning(events), 'Because two.');
    assert.equal(streamedContent(events), 'Four');
    for (const c of chunks(events)) {
      const d = c.choices[0]?.delta;
      assert.ok(!(d?.content && d.reasoning_content), 'reasoning and content in one delta');
    }
  });

  it('field: opening tag missing (template opened it)', async () => {
    const items = [chunk({ content: 'Because ' }), chunk({ content: 'two.</think>' }), chunk({ content: 'Four' }), chunk({}, 'stop')];
    const events = await run('field', items, true, true);
    assert.equal(streamedReasoning(events), 'Because two.');
    assert.equal(streamedContent(events), 'Four');
  });

  it('field: reasoning_content, reasoning and reasoning_details all arrive as reasoning_content', async () => {
    for (const delta of [{ reasoning_content: 'R' }, { reasoning: 'R' }, { reasoning_details: [{ type: 'reasoning.text', text: 'R' }] }]) {
      const events = await run('field', [chunk(delta), chunk({ content: 'C' }), chunk({}, 'stop')]);
      assert.equal(streamedReasoning(events), 'R', JSON.stringify(delta));
      assert.equal(streamedContent(events), 'C');
    }
  });

  it('tags: reasoning inline as <think>…</think> in content', async () => {
    const events = await run('tags', [chunk({ reasoning_content: 'R1' }), chunk({ reasoning_content: 'R2' }), chunk({ content: 'C' }), chunk({}, 'stop')]);
    assert.equal(streamedReasoning(events), '');
    assert.match(streamedContent(events), /^<think>R1R2<\/think>\s*C$/);
  });

  it('strip: reasoning dropped, content kept; reasoning still commits', async () => {
    const events = await run('strip');
    assert.equal(streamedReasoning(events), '');
    assert.equal(streamedContent(events), 'Four');
  });

  it('non-stream field: tags in a complete body are split', async () => {
    const up = await upstream(json(completionBody('<think>Because two.</think>\n\nFour')));
    const completion = completionOf(await runAll(engine, group('g', [endpoint(up.baseurl)]), chatRequest()));
    assert.equal(completion.choices[0]?.message.reasoning_content, 'Because two.');
    assert.equal(completion.choices[0]?.message.content, 'Four');
  });
});

describe('wire robustness', () => {
  it('CRLF framing and a UTF-8 character split across writes', async () => {
    const line = (content: string) =>
      `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\r\n\r\n`;
    const euro = Buffer.from(line('price: 5€ ✓'));
    const cut = euro.indexOf(Buffer.from('€')) + 1;
    const up = await upstream(
      sse(
        [
          { raw: ': keep-alive\r\n\r\n' },
          { bytes: euro.subarray(0, cut) },
          { wait: 20 },
          { bytes: euro.subarray(cut) },
          { raw: line(' done') },
          { raw: `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\r\n\r\n` },
          { raw: 'data: [DONE]\r\n\r\n' },
        ],
        { done: false },
      ),
    );
    const events = await runAll(engine, group('g', [endpoint(up.baseurl)]), chatRequest({ stream: true }));
    assert.equal(last(events).type, 'done');
    assert.equal(streamedContent(events), 'price: 5€ ✓ done');
  });
});
