/**
 * Resume as the openai SDK sees it (SPEC §3.4, §3.11): a fallback that
 * ignores the prefill (as OpenAI's own API does) must make the SDK's stream
 * iteration throw after exactly the first endpoint's text — never hand the
 * application two answers glued together with a `stop` finish.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { cutAfter, model, tokens } from '../helpers/fake-models.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';

const ANSWER = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen.';
const DELIVERED = tokens(ANSWER).slice(0, 10).join('');

let upstreams: FakeUpstream[] = [];
let proxy: RunningProxy;
let client: OpenAI;

before(async () => {
  const cut = await startFakeUpstream(cutAfter(ANSWER, 10));
  const ignores = await startFakeUpstream(model(ANSWER, 'ignore', 'SPLICED from b.'));
  const continues = await startFakeUpstream(model(ANSWER, 'continue'));
  upstreams = [cut, ignores, continues];
  proxy = await startProxy([
    group('splice', [endpoint(cut.baseurl, { name: 'cut' }), endpoint(ignores.baseurl, { name: 'ignores', type: 'openrouter' })]),
    group('resume', [endpoint(cut.baseurl, { name: 'cut' }), endpoint(continues.baseurl, { name: 'continues', prefill: true })]),
  ]);
  client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await Promise.all(upstreams.map((u) => u.close()));
});

async function collect(group: string): Promise<{ text: string; finish: string | null; error: unknown }> {
  const stream = await client.chat.completions.create({ model: group, messages: [{ role: 'user', content: 'count' }], stream: true });
  let text = '';
  let finish: string | null = null;
  try {
    for await (const part of stream) {
      text += part.choices[0]?.delta.content ?? '';
      finish = part.choices[0]?.finish_reason ?? finish;
    }
    return { text, finish, error: null };
  } catch (error) {
    return { text, finish, error };
  }
}

describe('resume through the openai SDK', () => {
  it('a fallback that ignores the prefill: the iteration throws after the first endpoint text only', async () => {
    const { text, finish, error } = await collect('splice');
    assert.ok(error instanceof OpenAI.APIError, `expected the SDK to throw, got ${String(error)}`);
    assert.match(error.message, /stream broke.*resume abandoned/);
    assert.equal(text, DELIVERED);
    assert.equal(finish, null);
  });

  it('a fallback that continues the prefill: one complete answer', async () => {
    const { text, finish, error } = await collect('resume');
    assert.equal(error, null);
    assert.equal(text, ANSWER);
    assert.equal(finish, 'stop');
  });
});
