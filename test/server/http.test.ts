/**
 * The HTTP API at the byte level (SPEC §4): repair, rejects, auth, CORS,
 * limits, headers, disconnects, key hygiene and the log lines.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { completionBody, json, sse, startFakeUpstream, wordStream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { readLogLines, startProxy, type RunningProxy } from '../helpers/proxy.js';

let good: FakeUpstream;
let down: FakeUpstream;
let proxy: RunningProxy;

before(async () => {
  good = await startFakeUpstream((_n, req) =>
    req.body.stream === true ? sse(wordStream(['Hello', ' world'])) : json(completionBody('Hello world')),
  );
  down = await startFakeUpstream(json({ error: { message: 'overloaded' } }, 500));
  proxy = await startProxy([group('g', [endpoint(good.baseurl, { name: 'good' })])]);
});

after(async () => {
  await proxy.close();
  await good.close();
  await down.close();
});

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function post(origin: string, path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
  return raw(origin, 'POST', path, body, { 'content-type': 'application/json', ...headers });
}

function raw(
  origin: string,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${origin}${path}`, { method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const answer = (r: RawResponse): unknown => (JSON.parse(r.text) as { choices: Array<{ message: { content: unknown } }> }).choices[0]?.message.content;

describe('request repair', () => {
  const cases: Array<[string, string | Buffer, Record<string, string>?]> = [
    ['trailing commas', '{"model":"g","messages":[{"role":"user","content":"hi"},],}'],
    ['single quotes', "{'model':'g','messages':[{'role':'user','content':'it\\'s ok'}]}"],
    ['comments', '{"model":"g", // the group\n"messages":[{"role":"user","content":"hi"}] /* done */}'],
    ['raw newlines and tabs in strings', '{"model":"g","messages":[{"role":"user","content":"line1\nline2\ttab"}]}'],
    ['Python True/None', '{"model":"g","stream":False,"stop":None,"messages":[{"role":"user","content":"hi"}]}'],
    ['a BOM', '\ufeff{"model":"g","messages":[{"role":"user","content":"hi"},]}'],
    ['form content type (curl -d)', '{"model":"g","messages":[{"role":"user","content":"hi"},]}', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['a code fence', '```json\n{"model":"g","messages":[{"role":"user","content":"hi"}]}\n```'],
  ];
  for (const [name, body, headers] of cases) {
    it(`repairs ${name} and marks the response`, async () => {
      const res = await post(proxy.origin, '/v1/chat/completions', body, headers);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers['x-failproxy-repaired'], 'true');
      assert.equal(answer(res), 'Hello world');
    });
  }

  it('passes raw newlines through as real newlines', async () => {
    const before = good.requests.length;
    await post(proxy.origin, '/v1/chat/completions', '{"model":"g","messages":[{"role":"user","content":"a\nb"}]}');
    const sent = good.requests[before]?.body.messages as Array<{ content: string }>;
    assert.equal(sent[0]?.content, 'a\nb');
  });

  it('valid JSON is not marked as repaired, whatever the content type', async () => {
    const res = await post(proxy.origin, '/v1/chat/completions', '{"model":"g","messages":[{"role":"user","content":"hi"}]}', {
      'content-type': 'text/plain',
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-failproxy-repaired'], undefined);
  });
});

describe('rejected requests', () => {
  const rejects: Array<[string, string, RegExp, string | null]> = [
    ['plain text', 'hello world', /must be a JSON object/, null],
    ['a truncated body', '{"model":"g","messages":[{"role":"user","content":"hello wor', /ends before the object is complete/, null],
    ['missing messages', '{"model":"g"}', /missing required field 'messages'/, 'messages'],
    ['missing model', '{"messages":[{"role":"user","content":"hi"}]}', /missing required field 'model'/, 'model'],
    ['NDJSON', '{"a":1}\n{"b":2}', /must be a JSON object, got an array/, null],
    ['a non-boolean stream', '{"model":"g","stream":"yes","messages":[{"role":"user","content":"hi"}]}', /'stream' must be a boolean/, 'stream'],
  ];
  for (const [name, body, message, param] of rejects) {
    it(`400 invalid_json for ${name}`, async () => {
      const before = good.requests.length;
      const res = await post(proxy.origin, '/v1/chat/completions', body);
      assert.equal(res.status, 400);
      const error = (JSON.parse(res.text) as { error: Record<string, unknown> }).error;
      assert.equal(error.type, 'invalid_request_error');
      assert.equal(error.code, 'invalid_json');
      assert.equal(error.param, param);
      assert.match(String(error.message), message);
      assert.equal(good.requests.length, before, 'no upstream contacted');
    });
  }

  it('unknown group: 404 model_not_found listing the groups, no upstream contacted', async () => {
    const before = good.requests.length;
    const res = await post(proxy.origin, '/v1/chat/completions', '{"model":"nope","messages":[{"role":"user","content":"hi"}]}');
    assert.equal(res.status, 404);
    const error = (JSON.parse(res.text) as { error: Record<string, unknown> }).error;
    assert.equal(error.code, 'model_not_found');
    assert.equal(error.param, 'model');
    assert.match(String(error.message), /Available groups: g/);
    assert.equal(good.requests.length, before);
  });

  it('413 beyond --max-body', async () => {
    const small = await startProxy([group('g', [endpoint(good.baseurl)])], { maxBody: 1024 });
    try {
      const big = JSON.stringify({ model: 'g', messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
      const res = await post(small.origin, '/v1/chat/completions', big);
      assert.equal(res.status, 413);
      assert.equal((JSON.parse(res.text) as { error: { type: string } }).error.type, 'invalid_request_error');
    } finally {
      await small.close();
    }
  });
});

describe('auth and CORS', () => {
  let locked: RunningProxy;
  before(async () => {
    locked = await startProxy([group('g', [endpoint(good.baseurl)])], { apiKeys: ['client-key-1'] });
  });
  after(() => locked.close());
  const body = '{"model":"g","messages":[{"role":"user","content":"hi"}]}';

  it('needs a key on every route but /health', async () => {
    assert.equal((await raw(locked.origin, 'GET', '/health')).status, 200);
    const models = await raw(locked.origin, 'GET', '/v1/models');
    assert.equal(models.status, 401);
    assert.equal((JSON.parse(models.text) as { error: { code: string } }).error.code, 'invalid_api_key');
    assert.equal((await post(locked.origin, '/v1/chat/completions', body)).status, 401);
    assert.equal((await post(locked.origin, '/v1/chat/completions', body, { authorization: 'Bearer wrong' })).status, 401);
  });

  it('accepts Bearer and x-api-key', async () => {
    assert.equal((await post(locked.origin, '/v1/chat/completions', body, { authorization: 'Bearer client-key-1' })).status, 200);
    assert.equal((await post(locked.origin, '/v1/chat/completions', body, { 'x-api-key': 'client-key-1' })).status, 200);
  });

  it('answers the CORS preflight naming Authorization explicitly', async () => {
    const res = await raw(locked.origin, 'OPTIONS', '/v1/chat/completions', undefined, {
      origin: 'http://localhost:3000',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type, x-stainless-os',
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], 'http://localhost:3000');
    const allowed = String(res.headers['access-control-allow-headers']).toLowerCase();
    for (const h of ['authorization', 'content-type', 'x-api-key', 'x-stainless-os']) assert.ok(allowed.includes(h), h);
    assert.match(String(res.headers['access-control-allow-methods']), /POST/);
  });

  it('puts Access-Control-Allow-Origin on errors too', async () => {
    const res = await raw(locked.origin, 'GET', '/v1/models', undefined, { origin: 'http://127.0.0.1:5173' });
    assert.equal(res.status, 401);
    assert.equal(res.headers['access-control-allow-origin'], 'http://127.0.0.1:5173');
  });
});

describe('responses', () => {
  it('SSE headers, one id per stream, [DONE] then close', async () => {
    const res = await post(proxy.origin, '/v1/chat/completions', '{"model":"g","stream":true,"messages":[{"role":"user","content":"hi"}]}');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers['x-accel-buffering'], 'no');
    assert.equal(res.headers['content-encoding'], undefined);
    assert.equal(res.headers['x-failproxy-endpoint'], 'good');
    assert.ok(res.headers['x-request-id']);
    assert.doesNotMatch(res.text, /^event:/m);
    const events = res.text.split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    const ids = new Set(events.slice(0, -1).map((e) => (JSON.parse(e.slice(6)) as { id: string }).id));
    assert.equal(ids.size, 1);
  });

  it('all failed on a streaming request: JSON, a real status and x-should-retry: false', async () => {
    const p = await startProxy([group('d', [endpoint(down.baseurl, { name: 'down' })])]);
    try {
      const res = await post(p.origin, '/v1/chat/completions', '{"model":"d","stream":true,"messages":[{"role":"user","content":"hi"}]}');
      assert.equal(res.status, 502);
      assert.match(String(res.headers['content-type']), /application\/json/);
      assert.equal(res.headers['x-should-retry'], 'false');
      const error = (JSON.parse(res.text) as { error: Record<string, unknown> }).error;
      assert.equal(error.code, 'all_endpoints_failed');
      assert.match(String(error.message), /\[down\] server 500: overloaded/);
    } finally {
      await p.close();
    }
  });

  it('/v1/completions answers the legacy prompt form, stream and non-stream', async () => {
    const plain = await post(proxy.origin, '/v1/completions', '{"model":"g","prompt":"Say hello"}');
    assert.equal(plain.status, 200);
    const body = JSON.parse(plain.text) as { object: string; choices: Array<{ text: string; finish_reason: string }> };
    assert.equal(body.object, 'text_completion');
    assert.equal(body.choices[0]?.text, 'Hello world');
    const sent = good.requests.at(-1)?.body.messages as Array<{ role: string; content: string }>;
    assert.deepEqual(sent, [{ role: 'user', content: 'Say hello' }]);

    const streamed = await post(proxy.origin, '/v1/completions', '{"model":"g","prompt":"Say hello","stream":true}');
    const events = streamed.text.split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    let text = '';
    for (const e of events.slice(0, -1)) {
      const c = JSON.parse(e.slice(6)) as { object: string; choices: Array<{ text: string }> };
      assert.equal(c.object, 'text_completion');
      text += c.choices[0]?.text ?? '';
    }
    assert.equal(text, 'Hello world');
  });

  it('chat completions accept a prompt string instead of messages', async () => {
    const res = await post(proxy.origin, '/v1/chat/completions', '{"model":"g","messages":[],"prompt":"hi there"}');
    assert.equal(res.status, 200);
    assert.deepEqual(good.requests.at(-1)?.body.messages, [{ role: 'user', content: 'hi there' }]);
  });
});

describe('disconnects', () => {
  it('a client that disconnects aborts its upstream within 1 s', async () => {
    const slow = await startFakeUpstream(sse(wordStream(Array.from({ length: 50 }, (_, i) => `w${i} `)), { gapMs: 100 }));
    const p = await startProxy([group('s', [endpoint(slow.baseurl)])]);
    try {
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest(`${p.origin}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => undefined);
        req.end('{"model":"s","stream":true,"messages":[{"role":"user","content":"hi"}]}');
        setTimeout(() => reject(new Error('no data')), 5000).unref();
      });
      const started = Date.now();
      while (slow.openSockets() > 0 && Date.now() - started < 1000) await new Promise((r) => setTimeout(r, 20));
      assert.equal(slow.openSockets(), 0, 'upstream connection closed');
      assert.equal(slow.aborted, 1);
    } finally {
      await p.close();
      await slow.close();
    }
  });
});

describe('keys and logs', () => {
  it('a key planted in an upstream error never reaches the client, /v1/models or the logs', async () => {
    const secret = 'sk-or-v1-planted0123456789secret';
    const leaky = await startFakeUpstream(json({ error: { message: `Invalid key ${secret} for this model` } }, 401));
    const p = await startProxy([group('leak', [endpoint(leaky.baseurl, { name: 'leaky', apikey: secret })])]);
    try {
      const res = await post(p.origin, '/v1/chat/completions', '{"model":"leak","messages":[{"role":"user","content":"hi"}]}');
      assert.equal(res.status, 401);
      assert.ok(!res.text.includes(secret));
      assert.match(res.text, /\[REDACTED\]/);
      const models = await raw(p.origin, 'GET', '/v1/models');
      assert.ok(!models.text.includes(secret));
      const lines = await readLogLines(p.logger, p.logDir);
      assert.ok(lines.length > 0);
      assert.ok(!JSON.stringify(lines).includes(secret));
    } finally {
      await p.close();
      await leaky.close();
    }
  });

  it('one request line and N attempt lines for a request that failed over N-1 times', async () => {
    const p = await startProxy([
      group('chain', [
        endpoint(down.baseurl, { name: 'down1' }),
        endpoint(down.baseurl, { name: 'down2', model: 'other' }),
        endpoint(good.baseurl, { name: 'good' }),
      ]),
    ]);
    try {
      const res = await post(p.origin, '/v1/chat/completions', '{"model":"chain","messages":[{"role":"user","content":"hi"}]}');
      assert.equal(res.status, 200);
      const id = res.headers['x-request-id'];
      const lines = (await readLogLines(p.logger, p.logDir)).filter((l) => l.id === id);
      const requests = lines.filter((l) => l.event === 'request');
      const attempts = lines.filter((l) => l.event === 'attempt');
      assert.equal(requests.length, 1);
      assert.equal(attempts.length, 3);
      assert.deepEqual(attempts.map((a) => [a.endpoint, a.ok, a.class, a.status]), [
        ['down1', false, 'server', 500],
        ['down2', false, 'server', 500],
        ['good', true, null, 200],
      ]);
      assert.equal(requests[0]?.endpoint, 'good');
      assert.equal(requests[0]?.attempts, 3);
      assert.equal(requests[0]?.status, 200);
      assert.equal(typeof requests[0]?.ms, 'number');
      assert.ok(!('messages' in requests[0]!), 'message contents only at debug');
    } finally {
      await p.close();
    }
  });

  it('message contents appear at debug level', async () => {
    const p = await startProxy([group('g', [endpoint(good.baseurl)])], { logLevel: 'debug' });
    try {
      await post(p.origin, '/v1/chat/completions', '{"model":"g","messages":[{"role":"user","content":"secret question"}]}');
      const request = (await readLogLines(p.logger, p.logDir)).find((l) => l.event === 'request');
      assert.match(JSON.stringify(request?.messages), /secret question/);
      assert.equal(request?.answer, 'Hello world');
    } finally {
      await p.close();
    }
  });
});

