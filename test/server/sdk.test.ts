/**
 * The official openai SDK as the client, through failovers: what real
 * applications see (SPEC §3, §4).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { chunk, completionBody, json, sse, startFakeUpstream, wordStream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';

let down: FakeUpstream;
let good: FakeUpstream;
let tools: FakeUpstream;
let cut: FakeUpstream;
let proxy: RunningProxy;
let client: OpenAI;

const words = ['The', ' answer', ' is', ' 42', '.'];

before(async () => {
  down = await startFakeUpstream(json({ detail: "No instances available (yet) for chute_id='x'" }, 503));
  good = await startFakeUpstream((_n, req) =>
    req.body.stream === true ? sse(wordStream(words)) : json(completionBody(words.join(''))),
  );
  tools = await startFakeUpstream(
    sse([
      chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
      chunk({}, 'tool_calls'),
    ]),
  );
  cut = await startFakeUpstream(sse([chunk({ content: 'Half an' }), chunk({ content: ' answer' })], { end: 'reset' }));
  proxy = await startProxy([
    group('main', [endpoint(down.baseurl, { name: 'chutes-down' }), endpoint(good.baseurl, { name: 'good' })]),
    group('tools', [endpoint(down.baseurl, { name: 'chutes-down', model: 'm2' }), endpoint(tools.baseurl, { name: 'tools' })]),
    group('cut', [endpoint(cut.baseurl, { name: 'cut' }), endpoint(good.baseurl, { name: 'good' })], { resume: false }),
  ]);
  client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await Promise.all([down, good, tools, cut].map((u) => u.close()));
});

describe('openai SDK through FailProxy', () => {
  it('non-streaming through a failover', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'main', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.equal(data.choices[0]?.message.content, 'The answer is 42.');
    assert.equal(response.headers.get('x-failproxy-endpoint'), 'good');
    assert.equal(response.headers.get('x-failproxy-attempts'), '2');
    assert.ok(response.headers.get('x-request-id'));
  });

  it('streaming through a failover', async () => {
    const stream = await client.chat.completions.create({
      model: 'main',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: number | undefined;
    let finish: string | null | undefined;
    for await (const part of stream) {
      text += part.choices[0]?.delta.content ?? '';
      finish = part.choices[0]?.finish_reason ?? finish;
      if (part.usage) usage = part.usage.total_tokens;
    }
    assert.equal(text, 'The answer is 42.');
    assert.equal(finish, 'stop');
    assert.equal(usage, 12);
  });

  it('chat.completions.stream().finalChatCompletion() for content', async () => {
    const runner = client.chat.completions.stream({ model: 'main', messages: [{ role: 'user', content: 'hi' }] });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0]?.message.content, 'The answer is 42.');
    assert.equal(final.choices[0]?.finish_reason, 'stop');
  });

  it('chat.completions.stream().finalChatCompletion() for tool calls', async () => {
    const runner = client.chat.completions.stream({
      model: 'tools',
      messages: [{ role: 'user', content: 'weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    assert.equal(final.choices[0]?.finish_reason, 'tool_calls');
    assert.ok(call && call.type === 'function');
    assert.equal(call.id, 'call_1');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  });

  it('models.list() lists the groups', async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.deepEqual(ids, ['cut', 'main', 'tools']);
  });

  it('an interruption after commit makes the iteration throw, after the partial text', async () => {
    const stream = await client.chat.completions.create({ model: 'cut', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    await assert.rejects(
      async () => {
        for await (const part of stream) text += part.choices[0]?.delta.content ?? '';
      },
      (err: unknown) => err instanceof OpenAI.APIError && /stream broke/.test(err.message),
    );
    assert.equal(text, 'Half an answer');
  });

  it('all endpoints failed: a typed SDK error that the SDK does not retry', async () => {
    const noRetry = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 2 });
    proxy.registry.set(group('dead', [endpoint(down.baseurl, { name: 'only', model: 'dead-model' })]));
    const before = down.requests.length;
    await assert.rejects(
      noRetry.chat.completions.create({ model: 'dead', messages: [{ role: 'user', content: 'hi' }], stream: true }),
      (err: unknown) => err instanceof OpenAI.InternalServerError && err.status === 502 && /only\] server 503/.test(err.message),
    );
    assert.equal(down.requests.length - before, 1, 'x-should-retry: false stops SDK retries');
  });
});

describe('mid-stream resume through the SDK', () => {
  const WORDS = Array.from({ length: 60 }, (_, i) => `w${i} `);
  const FULL = WORDS.join('');

  it('a stream cut after 40 of 60 words reaches the SDK complete, once, as one valid stream', async () => {
    const cutter = await startFakeUpstream(sse(WORDS.slice(0, 40).map((w) => chunk({ content: w })), { end: 'reset' }));
    const continuer = await startFakeUpstream((_n, req) => {
      const messages = req.body.messages as Array<{ role: string; content: string }>;
      const sent = messages.at(-1)?.role === 'assistant' ? messages.at(-1)!.content : '';
      return sse(wordStream((FULL.slice(sent.length).match(/\S+ /g) ?? []) as string[]));
    });
    proxy.registry.set(group('resumable', [endpoint(cutter.baseurl, { name: 'cutter' }), endpoint(continuer.baseurl, { name: 'continuer' })]));
    try {
      const runner = client.chat.completions.stream({ model: 'resumable', messages: [{ role: 'user', content: 'count' }] });
      const final = await runner.finalChatCompletion();
      assert.equal(final.choices[0]?.message.content, FULL);
      assert.equal(final.choices[0]?.finish_reason, 'stop');

      const res = await fetch(`${proxy.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'resumable', stream: true, messages: [{ role: 'user', content: 'count' }] }),
      });
      const events = (await res.text()).split('\n\n').filter(Boolean);
      assert.equal(events.filter((e) => e === 'data: [DONE]').length, 1);
      assert.equal(events.at(-1), 'data: [DONE]');
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)) as { id: string; choices: Array<{ delta: { role?: string } }> });
      assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
      assert.equal(chunks.filter((c) => c.choices[0]?.delta.role).length, 1);
    } finally {
      await cutter.close();
      await continuer.close();
    }
  });
});
