/**
 * Who may use the proxy, at the byte level: a web page from another origin
 * (or `null`) and a DNS-rebinding Host are refused with 403 before anything
 * happens — whatever the route, method or content type — and the fake
 * upstream proves no call left the proxy. Pages on this machine and clients
 * without an Origin are served, and the CORS grant names exactly the page.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { completionBody, json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { send, type RawResponse } from '../helpers/http.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';

const CHAT = '{"model":"g","messages":[{"role":"user","content":"hi"}]}';
const TEXT_PLAIN = { 'content-type': 'text/plain;charset=UTF-8' };

let upstream: FakeUpstream;
const proxies: RunningProxy[] = [];

before(async () => {
  upstream = await startFakeUpstream(json(completionBody('Hello from upstream')));
});

after(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await upstream.close();
});

async function proxyWith(options: Parameters<typeof startProxy>[1] = {}): Promise<RunningProxy> {
  const proxy = await startProxy([group('g', [endpoint(upstream.baseurl, { name: 'up' })])], options);
  proxies.push(proxy);
  return proxy;
}

/** Bytes as written, for what node:http will not send (no Host, a body that never comes). */
function rawExchange(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (/\r\n\r\n/.test(text) && /"(object|error)"/.test(text)) socket.destroy();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

/** What a page's script can send without a preflight: a text/plain POST of a chat request. */
function postChat(proxy: RunningProxy, headers: Record<string, string>): Promise<RawResponse> {
  return send(proxy.origin, 'POST', '/v1/chat/completions', { ...TEXT_PLAIN, ...headers }, CHAT);
}

function errorOf(res: RawResponse): { message: string; type: string; code: string; param: unknown } {
  return (JSON.parse(res.text) as { error: { message: string; type: string; code: string; param: unknown } }).error;
}

function assertRefused(res: RawResponse, code: 'origin_not_allowed' | 'host_not_allowed', label: string): void {
  assert.equal(res.status, 403, `${label}: ${res.text}`);
  assert.equal(res.headers['access-control-allow-origin'], undefined, `${label}: no grant`);
  assert.equal(res.headers['access-control-allow-methods'], undefined, `${label}: no preflight answer`);
  assert.match(String(res.headers['content-type']), /application\/json/);
  const error = errorOf(res);
  assert.equal(error.code, code, label);
  assert.equal(error.type, 'invalid_request_error');
  assert.equal(error.param, null);
}

describe('a web page from another origin', () => {
  let proxy: RunningProxy;
  before(async () => {
    proxy = await proxyWith();
  });

  it('cannot get a completion with a text/plain POST (no preflight), nor reach the upstream', async () => {
    const before = upstream.requests.length;
    for (const origin of [
      'https://evil.example',
      'null',
      'http://localhost.evil.com',
      'http://127.0.0.1.evil.com:8000',
    ]) {
      const res = await postChat(proxy, { origin });
      assertRefused(res, 'origin_not_allowed', origin);
      assert.equal(res.headers.vary, 'Origin');
      assert.match(errorOf(res).message, /--cors-origin/);
    }
    assert.equal(upstream.requests.length, before, 'no upstream call');
  });

  it('is refused on every route and method but GET /health, whatever the content type', async () => {
    const before = upstream.requests.length;
    const cases: Array<[string, string, Record<string, string>, string | undefined]> = [
      ['GET', '/v1/models', {}, undefined],
      ['GET', '/models', {}, undefined],
      [
        'POST',
        '/v1/completions',
        { 'content-type': 'application/x-www-form-urlencoded' },
        '{"model":"g","prompt":"hi"}',
      ],
      ['POST', '/chat/completions', { 'content-type': 'multipart/form-data; boundary=x' }, CHAT],
      ['POST', '/v1/chat/completions', { 'content-type': 'application/json' }, CHAT],
      ['PUT', '/v1/chat/completions', TEXT_PLAIN, CHAT],
      ['GET', '/v1/responses', {}, undefined],
      ['POST', '/v1/messages', TEXT_PLAIN, '{}'],
      ['GET', '/ui', {}, undefined],
      ['GET', '/no/such/route', {}, undefined],
      ['OPTIONS', '/health', { 'access-control-request-method': 'GET' }, undefined],
    ];
    for (const [method, path, headers, body] of cases) {
      const res = await send(proxy.origin, method, path, { origin: 'https://evil.example', ...headers }, body);
      assertRefused(res, 'origin_not_allowed', `${method} ${path}`);
    }
    assert.equal(upstream.requests.length, before, 'no upstream call');
  });

  it('gets no grant from a preflight', async () => {
    const res = await send(proxy.origin, 'OPTIONS', '/v1/chat/completions', {
      origin: 'https://evil.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type',
      'access-control-request-private-network': 'true',
    });
    assertRefused(res, 'origin_not_allowed', 'preflight');
    assert.equal(res.headers['access-control-allow-private-network'], undefined);
  });

  it('is refused before the body is read: a body that never arrives still gets its 403 at once', async () => {
    const port = new URL(proxy.origin).port;
    const head =
      `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: https://evil.example\r\n` +
      `Content-Type: text/plain\r\nContent-Length: 100000000\r\n\r\n{"model":"g",`;
    const text = await rawExchange(Number(port), head);
    assert.match(text, /^HTTP\/1\.1 403 /);
    assert.match(text, /origin_not_allowed/);
  });

  it('may still ask GET /health, but cannot read the answer (no grant)', async () => {
    const res = await send(proxy.origin, 'GET', '/health', {
      origin: 'https://evil.example',
      host: 'attacker.example',
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  });
});

describe('pages on this machine and clients without an Origin', () => {
  let proxy: RunningProxy;
  before(async () => {
    proxy = await proxyWith();
  });

  it('a loopback page gets its completion, with a grant naming exactly that page', async () => {
    const port = new URL(proxy.origin).port;
    for (const origin of [
      `http://localhost:${port}`,
      'http://127.0.0.1:5173',
      'http://[::1]:3000',
      'https://LOCALHOST:8443',
    ]) {
      const before = upstream.requests.length;
      const res = await postChat(proxy, { origin });
      assert.equal(res.status, 200, `${origin}: ${res.text}`);
      assert.match(res.text, /Hello from upstream/);
      assert.equal(res.headers['access-control-allow-origin'], origin);
      assert.equal(res.headers.vary, 'Origin');
      assert.equal(upstream.requests.length, before + 1);
    }
  });

  it('a loopback preflight is answered with the grant, Authorization named', async () => {
    const res = await send(proxy.origin, 'OPTIONS', '/v1/chat/completions', {
      origin: 'http://localhost:3000',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type',
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], 'http://localhost:3000');
    assert.match(String(res.headers['access-control-allow-headers']), /authorization/);
  });

  it('SDKs and curl (no Origin) are served, and given no CORS grant they do not need', async () => {
    const models = await send(proxy.origin, 'GET', '/v1/models');
    assert.equal(models.status, 200);
    assert.equal(models.headers['access-control-allow-origin'], undefined);
    const chat = await send(proxy.origin, 'POST', '/v1/chat/completions', { 'content-type': 'application/json' }, CHAT);
    assert.equal(chat.status, 200);
  });
});

describe('the Host header while bound to loopback (DNS rebinding)', () => {
  let proxy: RunningProxy;
  before(async () => {
    proxy = await proxyWith({ allowedHosts: ['proxy.example'] });
  });

  it('a foreign Host is refused, without an upstream call, even with no Origin', async () => {
    const before = upstream.requests.length;
    const port = new URL(proxy.origin).port;
    for (const host of [
      `attacker.example:${port}`,
      'attacker.example',
      `localhost.evil.com:${port}`,
      `127.0.0.1.evil.com:${port}`,
    ]) {
      const res = await postChat(proxy, { host });
      assertRefused(res, 'host_not_allowed', host);
      assert.match(errorOf(res).message, /--allowed-host/);
      const models = await send(proxy.origin, 'GET', '/v1/models', { host });
      assertRefused(models, 'host_not_allowed', `models ${host}`);
    }
    assert.equal(upstream.requests.length, before);
  });

  it('localhost, 127.0.0.1 and [::1], with or without the port, and --allowed-host names are served', async () => {
    const port = new URL(proxy.origin).port;
    for (const host of [
      `localhost:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      'localhost',
      '127.0.0.1',
      'LocalHost.',
      'proxy.example',
      `proxy.example:${port}`,
    ]) {
      const res = await send(proxy.origin, 'GET', '/v1/models', { host });
      assert.equal(res.status, 200, `${host}: ${res.text}`);
    }
  });

  it('a request with no Host at all (HTTP/1.0) is served: browsers always send one', async () => {
    const text = await rawExchange(Number(new URL(proxy.origin).port), 'GET /v1/models HTTP/1.0\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /"object":"list"/);
  });
});

describe('--cors-origin and keys', () => {
  it('a named origin is granted exactly; others stay refused', async () => {
    const proxy = await proxyWith({ corsOrigins: ['https://app.example'] });
    const ok = await postChat(proxy, { origin: 'https://app.example' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
    const preflight = await send(proxy.origin, 'OPTIONS', '/v1/chat/completions', {
      origin: 'https://app.example',
      'access-control-request-method': 'POST',
      'access-control-request-private-network': 'true',
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-private-network'], 'true');
    for (const origin of ['https://evil.example', 'http://app.example', 'https://app.example.evil.com']) {
      assertRefused(await send(proxy.origin, 'GET', '/v1/models', { origin }), 'origin_not_allowed', origin);
    }
  });

  it("'*' serves any origin with the * grant and no Vary", async () => {
    const proxy = await proxyWith({ corsOrigins: ['*'] });
    for (const origin of ['https://evil.example', 'null']) {
      const res = await postChat(proxy, { origin });
      assert.equal(res.status, 200);
      assert.equal(res.headers['access-control-allow-origin'], '*');
      assert.equal(res.headers.vary, undefined);
    }
  });

  it('the origin is judged before the key, and the key is still required after it', async () => {
    const proxy = await proxyWith({ apiKeys: ['client-key-1'] });
    const before = upstream.requests.length;
    const foreign = await postChat(proxy, { origin: 'https://evil.example', 'x-api-key': 'client-key-1' });
    assertRefused(foreign, 'origin_not_allowed', 'foreign origin with a valid key');
    const keyless = await postChat(proxy, { origin: 'http://localhost:3000' });
    assert.equal(keyless.status, 401);
    assert.equal(keyless.headers['access-control-allow-origin'], 'http://localhost:3000', 'the page can read why');
    assert.equal(upstream.requests.length, before);
    const auths: Array<Record<string, string>> = [
      { 'x-api-key': 'client-key-1' },
      { authorization: 'Bearer client-key-1' },
    ];
    for (const auth of auths) {
      const res = await postChat(proxy, { origin: 'http://localhost:3000', ...auth });
      assert.equal(res.status, 200);
    }
  });
});

describe('bound to a non-loopback address', () => {
  it('the Host check is off (keys protect there) but the Origin check is not', async () => {
    const proxy = await proxyWith({ host: '0.0.0.0', apiKeys: ['client-key-1'] });
    const key = { authorization: 'Bearer client-key-1' };
    const named = await send(proxy.origin, 'GET', '/v1/models', { host: 'box.lan:8000', ...key });
    assert.equal(named.status, 200);
    const page = await send(proxy.origin, 'GET', '/v1/models', {
      host: 'box.lan:8000',
      origin: 'http://box.lan:3000',
      ...key,
    });
    assertRefused(page, 'origin_not_allowed', 'LAN page');
  });
});
