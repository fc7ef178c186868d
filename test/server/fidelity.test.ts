/**
 * Pass-through fidelity (SPEC §3 point 12, issue 13): what an upstream sends
 * that FailProxy does not deliberately normalize reaches the client, in all
 * four directions (stream or completion upstream, stream or completion
 * client), read through the `openai` SDK as an application would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { ask, DIRECTIONS } from '../helpers/answer-view.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { answering, DETAILED_USAGE, OPENAI_EXTRAS, tokenLogprob, type Answer } from '../helpers/openai-answers.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';

const ANSWERS = {
  two: {
    choices: [
      { pieces: ['Paris', ' is', ' the', ' capital', '.'], finish: 'stop' },
      { pieces: ['It', ' is', ' Paris'], finish: 'length' },
    ],
  },
  tools: {
    choices: [
      { toolCalls: [{ id: 'call_paris', name: 'get_weather', args: ['{"city":', '"Paris"}'] }], finish: 'tool_calls' },
      { toolCalls: [{ id: 'call_lyon', name: 'get_weather', args: ['{"city":"Ly', 'on"}'] }], finish: 'tool_calls' },
    ],
  },
  logprobs: {
    choices: [
      { pieces: ['Par', 'is', ' ✓'], logprobs: true, finish: 'stop' },
      { pieces: ['Lyon', '?'], logprobs: true, finish: 'stop' },
    ],
  },
  extras: { choices: [{ pieces: ['Paris', '.'], finish: 'stop' }], top: OPENAI_EXTRAS },
  annotations: {
    choices: [
      {
        pieces: ['Paris', ' [1]'],
        annotations: [
          { type: 'url_citation', url_citation: { start_index: 0, end_index: 5, url: 'https://en.wikipedia.org/wiki/Paris', title: 'Paris - Wikipedia' } },
        ],
        extra: { x_vendor_note: { kept: true } },
        finish: 'stop',
      },
    ],
  },
  usage: { choices: [{ pieces: ['Paris'], finish: 'stop' }], usage: DETAILED_USAGE },
} satisfies Record<string, Answer>;

type AnswerName = keyof typeof ANSWERS;

const upstreams: FakeUpstream[] = [];
let proxy: RunningProxy;
let client: OpenAI;

before(async () => {
  const groups = [];
  for (const [name, answer] of Object.entries(ANSWERS)) {
    const upstream = await startFakeUpstream(answering(answer));
    upstreams.push(upstream);
    for (const d of DIRECTIONS) groups.push(group(`${name}-${d.key}`, [endpoint(upstream.baseurl, { name, stream: d.upstream })]));
  }
  proxy = await startProxy(groups);
  client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await Promise.all(upstreams.map((u) => u.close()));
});

const model = (name: AnswerName, d: (typeof DIRECTIONS)[number]): string => `${name}-${d.key}`;

describe('pass-through fidelity', () => {
  for (const d of DIRECTIONS) {
    it(`n: 2 gives every choice with its own index, content and finish_reason (${d.name})`, async () => {
      const view = await ask(client, model('two', d), d.client, { n: 2 });
      assert.deepEqual(
        view.choices.map((c) => [c.index, c.content, c.finish]),
        [
          [0, 'Paris is the capital.', 'stop'],
          [1, 'It is Paris', 'length'],
        ],
      );
      if (d.client) {
        // One chunk per choice, as OpenAI sends them; each choice gets its own role.
        for (const chunk of view.chunks) assert.ok(chunk.choices.length <= 1);
        const roles = view.chunks.flatMap((c) => c.choices.filter((ch) => ch.delta.role === 'assistant').map((ch) => ch.index));
        assert.deepEqual(roles.sort(), [0, 1]);
      }
    });

    it(`n: 2 keeps each choice's tool calls apart (${d.name})`, async () => {
      const view = await ask(client, model('tools', d), d.client, { n: 2 });
      assert.deepEqual(
        view.choices.map((c) => [c.index, c.toolCalls, c.finish]),
        [
          [0, [{ id: 'call_paris', name: 'get_weather', arguments: '{"city":"Paris"}' }], 'tool_calls'],
          [1, [{ id: 'call_lyon', name: 'get_weather', arguments: '{"city":"Lyon"}' }], 'tool_calls'],
        ],
      );
    });

    it(`logprobs reach the client as given (${d.name})`, async () => {
      const view = await ask(client, model('logprobs', d), d.client, { n: 2, logprobs: true, top_logprobs: 2 });
      assert.deepEqual(view.choices[0]?.logprobs, ['Par', 'is', ' ✓'].map((t) => tokenLogprob(t)));
      assert.deepEqual(view.choices[1]?.logprobs, ['Lyon', '?'].map((t) => tokenLogprob(t)));
      if (d.key === 'ss') {
        // On the chunk that carries the tokens' text.
        for (const chunk of view.chunks) {
          const choice = chunk.choices[0];
          if (!choice?.delta.content) continue;
          assert.equal(choice.logprobs?.content?.map((t) => t.token).join(''), choice.delta.content);
        }
      }
    });

    it(`top-level fields (system_fingerprint, service_tier, citations, provider, unknown) reach the client (${d.name})`, async () => {
      const view = await ask(client, model('extras', d), d.client);
      assert.ok(view.top.length > 0);
      // On the completion, or on every chunk that carries a choice.
      for (const top of view.top) assert.deepEqual(top, OPENAI_EXTRAS);
      if (d.client) assert.equal(view.chunks[0]?.system_fingerprint, 'fp_50cad350e4');
    });

    it(`annotations and unknown message fields pass through (${d.name})`, async () => {
      const view = await ask(client, model('annotations', d), d.client);
      const choice = view.choices[0];
      assert.equal(choice?.content, 'Paris [1]');
      assert.deepEqual(choice?.annotations, ANSWERS.annotations.choices[0]!.annotations);
      assert.deepEqual(choice?.extra, { x_vendor_note: { kept: true } });
    });

    it(`usage details (prompt_tokens_details, completion_tokens_details, cost) are kept (${d.name})`, async () => {
      const view = await ask(client, model('usage', d), d.client);
      assert.deepEqual(view.usage, DETAILED_USAGE);
    });
  }

  it('a chunk with extra fields is written as JSON.stringify writes it (raw SSE)', async () => {
    const res = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'extras-ss', messages: [{ role: 'user', content: 'hi' }], stream: true }),
    });
    const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: {'));
    assert.ok(events.length >= 3);
    for (const event of events) {
      const parsed = JSON.parse(event.slice(6)) as Record<string, unknown>;
      assert.equal(event, `data: ${JSON.stringify(parsed)}`);
      assert.equal(parsed.system_fingerprint, 'fp_50cad350e4');
      assert.deepEqual(parsed.x_vendor_trace, { region: 'eu-west', shard: 7 });
    }
  });
});
