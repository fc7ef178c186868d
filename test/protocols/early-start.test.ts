/**
 * `early_start_s`: a streaming front door whose group is slow to its first
 * token opens the stream early and keeps it alive, so agents do not abort a
 * silent stream; failures before the first token still fail over invisibly,
 * and an all-failed outcome after the early start is the protocol's in-band error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { validateGroup } from '../../src/config/validate.js';
import { json, sse, startFakeUpstream, wordStream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { unavailable } from '../helpers/agent-upstreams.js';

let hang: FakeUpstream;
let down: FakeUpstream;
let good: FakeUpstream;
let proxy: RunningProxy;

before(async () => {
  hang = await startFakeUpstream({ kind: 'hang' });
  down = await startFakeUpstream(unavailable);
  good = await startFakeUpstream((_n, req) =>
    req.body.stream === true ? sse(wordStream(['Finally', '.'])) : json({}),
  );
  // The hanging endpoint times out after 1.5 s: long after the 0.2 s early start, and long enough for one keep-alive.
  proxy = await startProxy([
    group(
      'slow',
      [
        endpoint(hang.baseurl, { name: 'hang-slow', model: 'slow-model', timeoutMs: 1500 }),
        endpoint(good.baseurl, { name: 'good' }),
      ],
      {
        earlyStartS: 0.2,
        // Every test must meet the hanging endpoint first, not skip it as cooling.
        cooldown: { failures: 100, seconds: 1 },
      },
    ),
    group(
      'doomed',
      [
        endpoint(hang.baseurl, { name: 'hang-doomed', model: 'doomed-model', timeoutMs: 600 }),
        endpoint(down.baseurl, { name: 'down' }),
      ],
      { earlyStartS: 0.1 },
    ),
    group(
      'held',
      [
        endpoint(hang.baseurl, { name: 'hang-held', model: 'held-model', timeoutMs: 600 }),
        endpoint(down.baseurl, { name: 'down' }),
      ],
      { earlyStartS: null },
    ),
  ]);
});

after(async () => {
  await proxy.close();
  await Promise.all([hang, down, good].map((u) => u.close()));
});

async function post(path: string, body: unknown): Promise<Response> {
  return fetch(`${proxy.origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('early_start_s', () => {
  it('Messages: the head and message_start go out before any endpoint answers, then pings, then the failover answer', async () => {
    const before = good.requests.length;
    const res = await post('/v1/messages', {
      model: 'slow',
      max_tokens: 10,
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(res.status, 200);
    assert.equal(good.requests.length, before, 'the head left while the first endpoint was still hanging');
    const text = await res.text();
    const events = [...text.matchAll(/^event: (\S+)/gm)].map((m) => m[1]);
    assert.equal(events[0], 'message_start');
    assert.equal(events[1], 'ping');
    assert.ok(events.indexOf('content_block_start') > 1);
    assert.deepEqual(events.slice(-2), ['message_delta', 'message_stop']);
    assert.match(text, /"text":"Finally"/);
  });

  it('Messages: the SDK accepts the early-started stream', async () => {
    const client = new Anthropic({ baseURL: proxy.origin, apiKey: 'unused', maxRetries: 0 });
    const message = await client.messages
      .stream({ model: 'slow', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    assert.deepEqual(message.content, [{ type: 'text', text: 'Finally.' }]);
  });

  it('Messages: all endpoints failing after the early start end the stream with an error event the SDK raises', async () => {
    const client = new Anthropic({ baseURL: proxy.origin, apiKey: 'unused', maxRetries: 0 });
    await assert.rejects(
      client.messages
        .stream({ model: 'doomed', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
        .finalMessage(),
      (err: unknown) => err instanceof Anthropic.APIError && /all_endpoints_failed|failed/i.test(err.message),
    );
    const text = await (
      await post('/v1/messages', {
        model: 'doomed',
        max_tokens: 10,
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      })
    ).text();
    assert.match(text, /^event: message_start/);
    assert.match(text, /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"All 2 endpoints/);
    assert.doesNotMatch(text, /message_stop/);
  });

  it('Responses: response.created first, response.in_progress keep-alives, then the answer; all-failed is response.failed and the SDK raises', async () => {
    const client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0 });
    const stream = client.responses.stream({ model: 'slow', input: 'hi' });
    const types: string[] = [];
    stream.on('event', (e) => types.push(e.type));
    const final = await stream.finalResponse();
    assert.equal(final.output_text, 'Finally.');
    assert.deepEqual(types.slice(0, 3), ['response.created', 'response.in_progress', 'response.in_progress']);
    const failing = client.responses.stream({ model: 'doomed', input: 'hi' });
    const failTypes: string[] = [];
    failing.on('event', (e) => failTypes.push(e.type));
    await assert.rejects(failing.finalResponse(), OpenAI.APIError);
    assert.equal(failTypes.at(-1), 'response.failed');
  });

  it('chat (only when the group sets it): SSE comments until the first token; all-failed is the in-band error the SDK raises', async () => {
    const client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'slow',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Finally.');
    const res = await post('/v1/chat/completions', {
      model: 'slow',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    const raw = await res.text();
    assert.match(raw, /^: failproxy\n\n: keep-alive\n\ndata: /);
    assert.match(raw, /data: \[DONE\]\n\n$/);
    const failing = await client.chat.completions.create({
      model: 'doomed',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    await assert.rejects(async () => {
      for await (const _chunk of failing) void _chunk;
    }, /All 2 endpoints/);
  });

  it('off (null): nothing is sent before the outcome, so all-failed is a real status', async () => {
    const res = await post('/v1/messages', {
      model: 'held',
      max_tokens: 10,
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(res.status, 502);
    const body = (await res.json()) as { type: string; error: { type: string } };
    assert.deepEqual([body.type, body.error.type], ['error', 'api_error']);
  });

  it('is read from a profile: seconds, "off", or a clear error with its path', () => {
    const ep = [{ baseurl: 'http://127.0.0.1:1/v1', apikey: '', model: 'm' }];
    assert.equal(validateGroup({ endpoints: ep, early_start_s: 8 }, 'g', 'g.yaml', {}).group?.earlyStartS, 8);
    assert.equal(validateGroup({ endpoints: ep, early_start_s: 'off' }, 'g', 'g.yaml', {}).group?.earlyStartS, null);
    assert.equal(validateGroup({ endpoints: ep }, 'g', 'g.yaml', {}).group?.earlyStartS, undefined);
    const bad = validateGroup({ endpoints: ep, early_start_s: 'soon' }, 'g', 'g.yaml', {});
    assert.equal(bad.group, null);
    assert.ok(bad.problems.some((p) => p.path === 'early_start_s' && /seconds/.test(p.message)));
  });
});
