/**
 * The `/v1/embeddings` route beyond failover: the cache, the clear 400s for
 * requests a group cannot serve, the wrong kind of group on either route,
 * and the log lines an embeddings request leaves.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { embeddingsEndpoint, embeddingsGroup, embeddingsServer, vectorFor } from '../helpers/embeddings.js';
import { endpoint, group } from '../helpers/groups.js';
import { readLogLines, startProxy, type RunningProxy } from '../helpers/proxy.js';

let proxy: RunningProxy;
let client: OpenAI;
let server: FakeUpstream;
let textOnly: FakeUpstream;
const KEY = 'sk-echoed-key-0123456789';

before(async () => {
  server = await startFakeUpstream(embeddingsServer('emb-model'));
  textOnly = await startFakeUpstream(embeddingsServer('emb-model'));
  proxy = await startProxy([
    embeddingsGroup('cached', [embeddingsEndpoint(server.baseurl, { name: 'server' })], {
      cache: { maxBytes: 1024 * 1024 },
    }),
    embeddingsGroup('plain', [embeddingsEndpoint(server.baseurl, { name: 'server' })]),
    embeddingsGroup('text-only', [
      embeddingsEndpoint(textOnly.baseurl, { name: 'text-only', tokenInputs: false, sendDimensions: false }),
    ]),
    group('chat', [endpoint(server.baseurl, { name: 'chat-endpoint' })]),
  ]);
  client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await Promise.all([server.close(), textOnly.close()]);
});

function post(
  path: string,
  body: unknown,
): Promise<{
  status: number;
  body: { error?: { code: string; message: string; param: string | null; type: string } };
}> {
  return fetch(`${proxy.baseURL}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as never }));
}

describe('/v1/embeddings', () => {
  it('the cache answers repeated inputs without asking upstream, and only sends what it lacks', async () => {
    const before = server.requests.length;
    const first = await client.embeddings.create({
      model: 'cached',
      input: ['alpha', 'beta'],
      encoding_format: 'float',
    });
    assert.equal(server.requests.length, before + 1);
    const { data: again, response } = await client.embeddings
      .create({ model: 'cached', input: ['beta', 'alpha'], encoding_format: 'float' })
      .withResponse();
    assert.equal(server.requests.length, before + 1);
    assert.equal(response.headers.get('x-failproxy-endpoint'), 'cache');
    assert.deepEqual(
      again.data.map((d) => d.embedding),
      [first.data[1]!.embedding, first.data[0]!.embedding],
    );
    assert.deepEqual(again.usage, { prompt_tokens: 0, total_tokens: 0 });
    const mixed = await client.embeddings.create({ model: 'cached', input: ['alpha', 'gamma'] });
    assert.deepEqual(server.requests.at(-1)?.body.input, ['gamma']);
    assert.deepEqual(
      mixed.data.map((d) => d.embedding),
      [vectorFor('emb-model', 'alpha'), vectorFor('emb-model', 'gamma')],
    );
    // The group without a cache asks every time.
    const count = server.requests.length;
    await client.embeddings.create({ model: 'plain', input: ['alpha'] });
    await client.embeddings.create({ model: 'plain', input: ['alpha'] });
    assert.equal(server.requests.length, count + 2);
  });

  it('token-id inputs pass through; a group whose endpoints take text only answers 400', async () => {
    const result = await client.embeddings.create({
      model: 'plain',
      input: [[1, 2, 3], [4]],
      encoding_format: 'float',
    });
    assert.deepEqual(server.requests.at(-1)?.body.input, [[1, 2, 3], [4]]);
    assert.deepEqual(result.data[0]?.embedding, vectorFor('emb-model', [1, 2, 3]));
    const before = textOnly.requests.length;
    const refused = await post('/embeddings', { model: 'text-only', input: [1, 2, 3] });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error?.code, 'unsupported_input');
    assert.equal(refused.body.error?.param, 'input');
    assert.equal(textOnly.requests.length, before);
    // send_dimensions: false keeps the field away from servers that reject it.
    await client.embeddings.create({ model: 'text-only', input: 'hello' });
    assert.equal(textOnly.requests.at(-1)?.body.dimensions, undefined);
  });

  it('requests no group could serve are 400s in the OpenAI shape, and no upstream is asked', async () => {
    const before = server.requests.length;
    const cases: Array<[unknown, string]> = [
      [{ model: 'plain' }, 'input'],
      [{ model: 'plain', input: '' }, 'input'],
      [{ model: 'plain', input: [] }, 'input'],
      [{ model: 'plain', input: ['ok', 7] }, 'input'],
      [{ model: 'plain', input: [[1, -2]] }, 'input'],
      [{ model: 'plain', input: 'x', encoding_format: 'int8' }, 'encoding_format'],
      [{ model: 'plain', input: 'x', dimensions: 256 }, 'dimensions'],
    ];
    for (const [body, param] of cases) {
      const res = await post('/embeddings', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error?.type, 'invalid_request_error');
      assert.equal(res.body.error?.param, param, JSON.stringify(body));
    }
    const unknown = await post('/embeddings', { model: 'nope', input: 'x' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error?.message ?? '', /Embeddings groups: cached, plain, text-only/);
    assert.equal(server.requests.length, before);
  });

  it('the wrong kind of group on either route is a clear 400', async () => {
    const chatToEmbeddings = await client.chat.completions
      .create({ model: 'plain', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    assert.ok(chatToEmbeddings instanceof OpenAI.BadRequestError);
    assert.equal((chatToEmbeddings.error as { code?: string }).code, 'wrong_group_kind');
    assert.match(chatToEmbeddings.message, /embeddings group.*\/v1\/embeddings/);
    const embeddingsToChat = await client.embeddings.create({ model: 'chat', input: 'hi' }).catch((e: unknown) => e);
    assert.ok(embeddingsToChat instanceof OpenAI.BadRequestError);
    assert.equal((embeddingsToChat.error as { code?: string }).code, 'wrong_group_kind');
    assert.match(embeddingsToChat.message, /chat group.*kind: embeddings/);
  });

  it('an upstream that echoes its key never shows it; a deadline ends a silent request with a 504', async () => {
    const echo = await startFakeUpstream(json({ error: { message: `Incorrect API key provided: ${KEY}` } }, 401));
    const silent = await startFakeUpstream({ kind: 'hang' });
    try {
      proxy.registry.set(embeddingsGroup('echo', [embeddingsEndpoint(echo.baseurl, { name: 'echo', apikey: KEY })]));
      const res = await post('/embeddings', { model: 'echo', input: 'x' });
      assert.equal(res.status, 401);
      assert.doesNotMatch(JSON.stringify(res.body), new RegExp(KEY));
      assert.match(res.body.error?.message ?? '', /auth 401: Incorrect API key provided: \[REDACTED\]/);

      proxy.registry.set(
        embeddingsGroup('bounded', [embeddingsEndpoint(silent.baseurl, { name: 'silent', timeoutMs: 30_000 })], {
          deadlineMs: 300,
        }),
      );
      const late = await post('/embeddings', { model: 'bounded', input: 'x' });
      assert.equal(late.status, 504);
      assert.match(late.body.error?.message ?? '', /deadline of 0.3 s/);
    } finally {
      await Promise.all([echo.close(), silent.close()]);
    }
  });

  it('leaves the same request and attempt log lines as chat', async () => {
    await client.embeddings.create({ model: 'plain', input: ['logged'] });
    const lines = await readLogLines(proxy.logger, proxy.logDir);
    const request = lines.filter((l) => l.event === 'request' && l.group === 'plain').at(-1);
    assert.ok(request);
    assert.equal(request.outcome, 'ok');
    assert.equal(request.status, 200);
    assert.equal(request.endpoint, 'server');
    assert.deepEqual(request.usage, { prompt_tokens: 3, completion_tokens: 0, total_tokens: 3 });
    assert.ok(
      lines.some((l) => l.event === 'attempt' && l.group === 'plain' && l.ok === true && l.endpoint === 'server'),
    );
    for (const line of lines) assert.doesNotMatch(JSON.stringify(line), /sk-test-0123456789abcdef/);
  });
});
