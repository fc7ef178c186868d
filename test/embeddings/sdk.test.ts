/**
 * `/v1/embeddings` with the official openai SDK as the client, against fake
 * embedding servers that misbehave: every bad answer fails over, nothing of
 * another embedding space ever reaches the client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import {
  json,
  startFakeUpstream,
  type Behaviour,
  type FakeUpstream,
  type ReceivedRequest,
} from '../helpers/fake-upstream.js';
import {
  DIMS,
  embeddingsAnswer,
  embeddingsEndpoint,
  embeddingsGroup,
  embeddingsServer,
  vectorFor,
} from '../helpers/embeddings.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';

let proxy: RunningProxy;
let client: OpenAI;
const upstreams: FakeUpstream[] = [];
let groupCounter = 0;

async function upstream(
  behaviour: Behaviour | ((n: number, req: ReceivedRequest) => Behaviour),
): Promise<FakeUpstream> {
  const u = await startFakeUpstream(behaviour);
  upstreams.push(u);
  return u;
}

/** A new group on the running proxy; returns its name. */
function addGroup(...args: Parameters<typeof embeddingsGroup> extends [string, ...infer R] ? R : never): string {
  const name = `emb-${++groupCounter}`;
  proxy.registry.set(embeddingsGroup(name, ...args));
  return name;
}

before(async () => {
  proxy = await startProxy([]);
  client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await Promise.all(upstreams.map((u) => u.close()));
});

const inputs = ['the cat', 'sat on', 'the mat'];
const expected = (family: string, list: unknown[] = inputs): number[][] => list.map((i) => vectorFor(family, i));
/** The three inputs as floats, with the response headers. */
const floatEmbeddings = (model: string) =>
  client.embeddings.create({ model, input: inputs, encoding_format: 'float' }).withResponse();
const vectors = (answer: OpenAI.CreateEmbeddingResponse): number[][] => answer.data.map((d) => d.embedding);

describe('embeddings through the openai SDK', () => {
  it('float: a 503 and a 429 fail over; the upstream is asked for float with the group dimensions', async () => {
    const down = await upstream(json({ error: { message: 'overloaded' } }, 503));
    const limited = await upstream(json({ error: { message: 'slow down' } }, 429, { 'retry-after': '7' }));
    const good = await upstream(embeddingsServer('emb-model'));
    const name = addGroup([
      embeddingsEndpoint(down.baseurl, { name: 'down' }),
      embeddingsEndpoint(limited.baseurl, { name: 'limited' }),
      embeddingsEndpoint(good.baseurl, { name: 'good' }),
    ]);
    const { data, response } = await floatEmbeddings(name);
    assert.deepEqual(vectors(data), expected('emb-model'));
    assert.deepEqual(
      data.data.map((d) => d.index),
      [0, 1, 2],
    );
    assert.equal(data.model, 'emb-model-upstream');
    assert.deepEqual(data.usage, { prompt_tokens: 9, total_tokens: 9 });
    assert.equal(response.headers.get('x-failproxy-endpoint'), 'good');
    assert.equal(response.headers.get('x-failproxy-attempts'), '3');
    assert.equal(good.requests[0]?.url, '/v1/embeddings');
    assert.equal(good.requests[0]?.body.encoding_format, 'float');
    assert.equal(good.requests[0]?.body.dimensions, DIMS);
    assert.equal(good.requests[0]?.body.model, 'emb-model');
  });

  it("the SDK's default base64: asked upstream as float, encoded locally, decoded by the SDK to the same floats", async () => {
    const good = await upstream(embeddingsServer('emb-model'));
    const name = addGroup([embeddingsEndpoint(good.baseurl, { name: 'good' })]);
    const result = await client.embeddings.create({ model: name, input: inputs });
    assert.deepEqual(
      result.data.map((d) => d.embedding),
      expected('emb-model'),
    );
    assert.equal(good.requests[0]?.body.encoding_format, 'float');
    // What the Python SDK and others receive when they ask for base64 themselves.
    const raw = await fetch(`${proxy.baseURL}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: name, input: 'the cat', encoding_format: 'base64' }),
    });
    const body = (await raw.json()) as { data: Array<{ embedding: string }> };
    const bytes = Buffer.from(body.data[0]!.embedding, 'base64');
    assert.equal(bytes.length, DIMS * 4);
    assert.deepEqual(
      Array.from({ length: DIMS }, (_, k) => bytes.readFloatLE(k * 4)),
      vectorFor('emb-model', 'the cat'),
    );
  });

  const broken: Array<[string, (req: ReceivedRequest) => Behaviour, RegExp]> = [
    [
      'a wrong dimension',
      (req) => embeddingsAnswer('emb-model', req, { dims: DIMS * 2 }),
      /has 16 dimensions, the group declares 8/,
    ],
    ['a short answer', (req) => embeddingsAnswer('emb-model', req, { short: 1 }), /2 vectors for 3 inputs/],
    ['a null in a vector', (req) => embeddingsAnswer('emb-model', req, { poison: null }), /not a finite number/],
    [
      'a bare NaN token',
      () => ({
        kind: 'text',
        status: 200,
        contentType: 'application/json',
        body: '{"object":"list","data":[{"index":0,"embedding":[NaN]}]}',
      }),
      /not JSON/,
    ],
    ['one index twice', (req) => embeddingsAnswer('emb-model', req, { sameIndex: 0 }), /index 0 appears twice/],
    ['a 200 carrying an error', () => json({ error: { message: 'model not loaded', code: 500 } }), /model not loaded/],
  ];
  for (const [what, behaviour, reason] of broken) {
    it(`${what} is invalid_response and fails over`, async () => {
      const bad = await upstream((_n, req) => behaviour(req));
      const good = await upstream(embeddingsServer('emb-model'));
      const name = addGroup([
        embeddingsEndpoint(bad.baseurl, { name: 'bad' }),
        embeddingsEndpoint(good.baseurl, { name: 'good' }),
      ]);
      const { data, response } = await floatEmbeddings(name);
      assert.deepEqual(vectors(data), expected('emb-model'));
      assert.equal(response.headers.get('x-failproxy-endpoint'), 'good');
      // When nothing else is left, the reason is what the client reads.
      const alone = addGroup([embeddingsEndpoint(bad.baseurl, { name: 'bad' })]);
      const failure = await client.embeddings
        .create({ model: alone, input: inputs, encoding_format: 'float' })
        .catch((e: unknown) => e);
      assert.ok(failure instanceof OpenAI.APIError);
      assert.equal(failure.status, 502);
      assert.equal((failure.error as { code?: string }).code, 'all_endpoints_failed');
      assert.match(failure.message, /invalid_response/);
      assert.match(failure.message, reason);
    });
  }

  it('a silent upstream times out and fails over; a client that goes away aborts the upstream call', async () => {
    const silent = await upstream({ kind: 'hang' });
    const good = await upstream(embeddingsServer('emb-model'));
    const name = addGroup([
      embeddingsEndpoint(silent.baseurl, { name: 'silent', timeoutMs: 300 }),
      embeddingsEndpoint(good.baseurl, { name: 'good' }),
    ]);
    const { response } = await client.embeddings.create({ model: name, input: inputs }).withResponse();
    assert.equal(response.headers.get('x-failproxy-endpoint'), 'good');
    assert.equal(silent.aborted, 1);

    const slow = await upstream({ kind: 'hang' });
    const alone = addGroup([embeddingsEndpoint(slow.baseurl, { name: 'slow', timeoutMs: 30_000 })]);
    const controller = new AbortController();
    const pending = client.embeddings
      .create({ model: alone, input: inputs }, { signal: controller.signal })
      .catch((e: unknown) => e);
    while (slow.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    assert.ok((await pending) instanceof OpenAI.APIUserAbortError);
    for (let i = 0; i < 200 && slow.aborted === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(slow.aborted, 1);
  });

  it('group retry: the same endpoint is asked again after a 503 (embeddings are idempotent)', async () => {
    const once = await upstream((n, req) =>
      n === 1 ? json({ error: { message: 'blip' } }, 503) : embeddingsAnswer('emb-model', req),
    );
    const name = addGroup([embeddingsEndpoint(once.baseurl, { name: 'once' })], {
      retry: { attempts: 1, on: ['server'], baseMs: 10, maxMs: 10, retryAfterMaxS: 1 },
    });
    const { response } = await client.embeddings.create({ model: name, input: inputs }).withResponse();
    assert.equal(response.headers.get('x-failproxy-endpoint'), 'once');
    assert.equal(response.headers.get('x-failproxy-attempts'), '2');
    assert.equal(once.requests.length, 2);
  });

  it('hedge_ms: a slow endpoint gets company, the first valid answer wins and the slow call is stopped', async () => {
    const slow = await upstream({ kind: 'hang' });
    const quick = await upstream(embeddingsServer('emb-model'));
    const name = addGroup(
      [
        embeddingsEndpoint(slow.baseurl, { name: 'slow', timeoutMs: 20_000 }),
        embeddingsEndpoint(quick.baseurl, { name: 'quick' }),
      ],
      {
        hedgeMs: 100,
      },
    );
    const started = Date.now();
    const { data, response } = await floatEmbeddings(name);
    assert.ok(Date.now() - started < 10_000);
    assert.equal(response.headers.get('x-failproxy-endpoint'), 'quick');
    assert.deepEqual(vectors(data), expected('emb-model'));
    for (let i = 0; i < 200 && slow.aborted === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(slow.aborted, 1);
  });

  it('shuffled indices are answered in index order', async () => {
    const shuffled = await upstream(embeddingsServer('emb-model', { shuffle: true }));
    const name = addGroup([embeddingsEndpoint(shuffled.baseurl, { name: 'shuffled' })]);
    const result = await client.embeddings.create({ model: name, input: inputs, encoding_format: 'float' });
    assert.deepEqual(
      result.data.map((d) => d.embedding),
      expected('emb-model'),
    );
  });

  it('a batch of 250 with max_batch 100: three calls, each failing over on its own, reassembled in order, usage summed', async () => {
    // The first server fails its second call only: that sub-batch alone moves on.
    const flaky = await upstream((n, req) =>
      n === 2 ? json({ error: { message: 'busy' } }, 503) : embeddingsAnswer('emb-model', req),
    );
    const spare = await upstream(embeddingsServer('emb-model'));
    const name = addGroup([
      embeddingsEndpoint(flaky.baseurl, { name: 'flaky', maxBatch: 100 }),
      embeddingsEndpoint(spare.baseurl, { name: 'spare', maxBatch: 100 }),
    ]);
    const many = Array.from({ length: 250 }, (_, i) => `chunk number ${i}`);
    const { data, response } = await client.embeddings.create({ model: name, input: many }).withResponse();
    assert.equal(data.data.length, 250);
    assert.deepEqual(
      data.data.map((d) => d.embedding),
      expected('emb-model', many),
    );
    assert.deepEqual(
      data.data.map((d) => d.index),
      many.map((_, i) => i),
    );
    assert.deepEqual(data.usage, { prompt_tokens: 750, total_tokens: 750 });
    assert.deepEqual(
      flaky.requests.map((r) => (r.body.input as unknown[]).length),
      [100, 100, 50],
    );
    assert.deepEqual(
      spare.requests.map((r) => (r.body.input as unknown[])[0]),
      ['chunk number 100'],
    );
    assert.equal(response.headers.get('x-failproxy-endpoint'), 'flaky, spare');
  });

  it('never fails over to another family: all-failed, and the other family is never asked', async () => {
    const down = await upstream(json({ error: { message: 'overloaded' } }, 503));
    const other = await upstream(embeddingsServer('other-model'));
    const name = addGroup([
      embeddingsEndpoint(down.baseurl, { name: 'primary', family: 'text-embedding-3-small' }),
      embeddingsEndpoint(other.baseurl, { name: 'other-space', model: 'other-model', family: 'other-model' }),
    ]);
    const failure = await client.embeddings.create({ model: name, input: inputs }).catch((e: unknown) => e);
    assert.ok(failure instanceof OpenAI.APIError);
    assert.equal(failure.status, 502);
    assert.match(
      failure.message,
      /\[other-space\] skipped: not tried: family 'other-model' is another embedding space/,
    );
    assert.equal(other.requests.length, 0);
  });

  it('allow_cross_family crosses, but pins the first answered family for every sub-batch of the request', async () => {
    // Family A answers the first sub-batch and then breaks; B may not fill in the rest of the same request.
    const a = await upstream((n, req) =>
      n === 1 ? embeddingsAnswer('fam-a', req) : json({ error: { message: 'gone' } }, 503),
    );
    const b = await upstream(embeddingsServer('fam-b'));
    const name = addGroup(
      [
        embeddingsEndpoint(a.baseurl, { name: 'a', family: 'fam-a', maxBatch: 2 }),
        embeddingsEndpoint(b.baseurl, { name: 'b', family: 'fam-b', maxBatch: 2 }),
      ],
      { allowCrossFamily: true },
    );
    const failure = await client.embeddings
      .create({ model: name, input: ['w', 'x', 'y', 'z'] })
      .catch((e: unknown) => e);
    assert.ok(failure instanceof OpenAI.APIError);
    assert.equal(failure.status, 502);
    assert.equal(b.requests.length, 0);
    // A request whose first sub-batch fails over crosses, and stays in family B.
    const result = await client.embeddings.create({ model: name, input: ['w', 'x', 'y'], encoding_format: 'float' });
    assert.deepEqual(
      result.data.map((d) => d.embedding),
      expected('fam-b', ['w', 'x', 'y']),
    );
  });
});
