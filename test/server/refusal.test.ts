/**
 * A refusal (`message.refusal` / `delta.refusal`, no content, no tool calls)
 * is the provider's deliberate answer (SPEC §3.2 `content_filter`): failed
 * over by default without cooling the endpoint, returned as given with
 * `failover_on_content_filter: false`, and the answer the client gets when
 * no endpoint answers otherwise. In all four directions, through the SDK.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { ask, DIRECTIONS } from '../helpers/answer-view.js';
import { json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { answering, type Answer } from '../helpers/openai-answers.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';

const REFUSAL_TEXT = "I'm sorry, but I can't help with that.";
const REFUSAL: Answer = {
  choices: [{ refusal: ["I'm sorry,", " but I can't", ' help with that.'], finish: 'stop' }],
  top: { system_fingerprint: 'fp_refuser' },
};
const GOOD: Answer = { choices: [{ pieces: ['Paris', '.'], finish: 'stop' }] };

let refuser: FakeUpstream;
let good: FakeUpstream;
let broken: FakeUpstream;
let proxy: RunningProxy;
let client: OpenAI;

before(async () => {
  refuser = await startFakeUpstream(answering(REFUSAL));
  good = await startFakeUpstream(answering(GOOD));
  broken = await startFakeUpstream(json({ error: { message: 'The server had an error', type: 'server_error' } }, 500));
  const groups = [];
  for (const d of DIRECTIONS) {
    const r = endpoint(refuser.baseurl, { name: 'refuser', stream: d.upstream });
    groups.push(
      // One failure of a class that cools would cool the refuser at once.
      group(`over-${d.key}`, [r, endpoint(good.baseurl, { name: 'good', stream: d.upstream })], { cooldown: { failures: 1, seconds: 30 } }),
      group(`asis-${d.key}`, [r, endpoint(good.baseurl, { name: 'good', stream: d.upstream })], { failoverOnContentFilter: false }),
      group(`all-${d.key}`, [r, endpoint(broken.baseurl, { name: 'broken', stream: d.upstream })]),
    );
  }
  proxy = await startProxy(groups);
  client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await Promise.all([refuser, good, broken].map((u) => u.close()));
});

describe('refusals', () => {
  for (const d of DIRECTIONS) {
    it(`a refusal fails over by default, and none of it reaches the client (${d.name})`, async () => {
      const goodBefore = good.requests.length;
      const view = await ask(client, `over-${d.key}`, d.client);
      assert.equal(view.endpoint, 'good');
      assert.equal(good.requests.length, goodBefore + 1);
      assert.equal(view.choices[0]?.content, 'Paris.');
      assert.equal(view.choices[0]?.refusal, null);
      // A held refusal is never the commit point: the stream shows nothing of it.
      for (const chunk of view.chunks) assert.equal((chunk.choices[0]?.delta as Record<string, unknown> | undefined)?.refusal ?? null, null);
      const status = proxy.engine.health.snapshot(endpoint(refuser.baseurl, { name: 'refuser', stream: d.upstream }));
      assert.equal(status.state, 'ok', 'a refusal never cools the endpoint');
    });

    it(`failover_on_content_filter: false returns the refusal as given (${d.name})`, async () => {
      const goodBefore = good.requests.length;
      const view = await ask(client, `asis-${d.key}`, d.client);
      assert.equal(view.endpoint, 'refuser');
      assert.equal(good.requests.length, goodBefore);
      assert.deepEqual(
        view.choices.map((c) => [c.index, c.content, c.refusal, c.finish]),
        [[0, null, REFUSAL_TEXT, 'stop']],
      );
      assert.equal(view.top[0]?.system_fingerprint, 'fp_refuser');
    });

    it(`when every endpoint fails and one refused, the client gets the refusal, not an error (${d.name})`, async () => {
      const view = await ask(client, `all-${d.key}`, d.client);
      assert.equal(view.endpoint, 'refuser');
      assert.deepEqual(
        view.choices.map((c) => [c.index, c.content, c.refusal, c.finish]),
        [[0, null, REFUSAL_TEXT, 'stop']],
      );
      assert.equal(view.top[0]?.system_fingerprint, 'fp_refuser');
      assert.deepEqual(view.usage, { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 });
    });
  }

  it('the refusal answer tells which attempts were made (headers)', async () => {
    const res = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'all-jj', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-failproxy-endpoint'), 'refuser');
    assert.equal(res.headers.get('x-failproxy-attempts'), '2');
    const body = (await res.json()) as { choices: Array<{ message: { refusal: string } }> };
    assert.equal(body.choices[0]?.message.refusal, REFUSAL_TEXT);
  });
});
