/**
 * Hostile input (SPEC §7 "bad input gets a clear error and never crashes the
 * process or leaks memory"): 10,000 random or malformed requests — bad JSON,
 * huge and deeply nested bodies, wrong types for every field, invalid UTF-8,
 * absurd headers, wrong routes, protocol garbage on raw sockets, slow-loris
 * headers and bodies. Every one must get a 4xx (a JSON error from the proxy,
 * or Node's own bodiless 4xx for unparsable HTTP) or a closed connection; the
 * server stays up, memory stays bounded, and a normal request right after
 * succeeds.
 *
 * Requests that are well-formed enough to reach an upstream go to a group
 * whose upstream rejects everything with 400 (as a real provider would reject
 * nonsense), so the whole engine path runs too.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { Agent, request } from 'undici';
import { FailoverEngine } from '../../src/core/engine.js';
import { createProxyServer, type ProxyServer } from '../../src/server/app.js';
import { GroupRegistry } from '../../src/server/registry.js';
import { completionBody, json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';

const SEED = 7_331;
const TOTAL = 10_000;
const RAW = 1_000;
const SLOW = 60;
const MAX_BODY = 256 * 1024;
const HEADERS_TIMEOUT = 1_000;
const REQUEST_TIMEOUT = 2_000;

const problems: unknown[] = [];
const onProblem = (err: unknown): void => void problems.push(err);
process.on('unhandledRejection', onProblem);
process.on('uncaughtException', onProblem);

let rejecting: FakeUpstream;
let good: FakeUpstream;
let engine: FailoverEngine;
let proxy: ProxyServer;
let port: number;
let origin: string;
let client: Agent;
let gc: () => void;

before(async () => {
  setFlagsFromString('--expose-gc');
  gc = runInNewContext('gc') as () => void;
  rejecting = await startFakeUpstream(
    json({ error: { message: 'Invalid request', type: 'invalid_request_error' } }, 400),
  );
  good = await startFakeUpstream(json(completionBody('still here')));
  engine = new FailoverEngine();
  proxy = createProxyServer({
    engine,
    groups: new GroupRegistry([
      group('hostile-group', [endpoint(rejecting.baseurl, { name: 'rejecting' })]),
      group('good', [endpoint(good.baseurl, { name: 'good' })]),
    ]),
    maxBody: MAX_BODY,
    headersTimeoutMs: HEADERS_TIMEOUT,
    requestTimeoutMs: REQUEST_TIMEOUT,
  });
  proxy.server.listen(0, '127.0.0.1');
  await once(proxy.server, 'listening');
  port = (proxy.server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  client = new Agent({ connections: 64, keepAliveTimeout: 10_000 });
});

after(async () => {
  process.off('unhandledRejection', onProblem);
  process.off('uncaughtException', onProblem);
  await client?.close();
  await proxy?.shutdown(1000);
  await engine?.close();
  await Promise.all([rejecting?.close(), good?.close()]);
});

// ---------------------------------------------------------------------------
// Generating hostile requests (deterministic: fast-check samples with a seed).

interface HttpCase {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}

const VALID = { model: 'hostile-group', messages: [{ role: 'user', content: 'hi' }] };
const json_ = (v: unknown): string => JSON.stringify(v);

/** Values of the wrong type (or absurd values of the right one) for any field. */
const WRONG_VALUES: unknown[] = [
  null,
  0,
  -1,
  1e308,
  -1e308,
  true,
  '',
  'x',
  [],
  {},
  [[[]]],
  [null],
  [{}],
  [{ role: 1 }],
  [{ role: 'user', content: { nested: [1, 2, 3] } }],
  { $ref: '#' },
  { __proto__: { polluted: true } },
  'x'.repeat(100_000),
  Array.from({ length: 2_000 }, (_, i) => i),
];
const FIELDS = [
  'model',
  'messages',
  'stream',
  'stream_options',
  'prompt',
  'temperature',
  'max_tokens',
  'tools',
  'tool_choice',
  'n',
  'stop',
  'logit_bias',
  'response_format',
  'user',
  'seed',
  'top_p',
];

function samples<T>(arb: fc.Arbitrary<T>, n: number, salt: number): T[] {
  return fc.sample(arb, { numRuns: n, seed: SEED + salt });
}

/** A request body with one field set to a wrong value. */
function wrongTypeBodies(n: number): string[] {
  return samples(
    fc.tuple(
      fc.constantFrom(...FIELDS),
      fc.constantFrom(...WRONG_VALUES),
      fc.boolean(),
      fc.constantFrom('chat', 'message'),
    ),
    n,
    1,
  ).map(([field, value, stream, where]) => {
    if (where === 'message')
      return json_({ ...VALID, stream, messages: [{ role: 'user', content: 'hi', [field]: value }] });
    return json_({ ...VALID, stream, [field]: value });
  });
}

function badJsonBodies(n: number): Array<string | Buffer> {
  const valid = json_({ ...VALID, stream: true, temperature: 0.5 });
  return samples(
    fc.oneof(
      fc.nat(valid.length).map((cut) => valid.slice(0, cut)),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.jsonValue({ maxDepth: 4 }).map(json_),
      fc.constantFrom(
        `${valid}garbage`,
        `${valid}\n${valid}`,
        `[${valid}]`,
        `{"model": "hostile-group", "messages": [{"role": "user", "content": "hi",}],}`,
        `{'model': 'hostile-group', 'messages': [{'role': 'user', 'content': 'hi'}]} // comment`,
        '```json\n' + valid + '\n```',
        '\ufeff' + valid,
        'model=hostile-group&messages=hi',
        'null',
        '"just a string"',
        '{"model": True, "messages": None}',
        '{"model":"hostile-group","messages":[{"role":"user","content":"\\ud800"}]}',
        '{"model":"hostile-group","messages":[{"role":"user","content":"\\u0000"}]}',
        '{"__proto__": {"model": "hostile-group"}, "messages": []}',
        '{"constructor": {"prototype": {"x": 1}}, "model": "nope", "messages": [{"role":"user"}]}',
      ),
    ),
    n,
    2,
  );
}

function invalidUtf8Bodies(n: number): Buffer[] {
  const bad = [
    Buffer.from([0xff]),
    Buffer.from([0xc0, 0xaf]),
    Buffer.from([0xe2, 0x82]),
    Buffer.from([0xed, 0xa0, 0x80]),
    Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
  ];
  return samples(fc.tuple(fc.nat(4), fc.nat(60)), n, 3).map(([which, at]) => {
    const text = Buffer.from(json_(VALID));
    const cut = Math.min(at, text.length);
    return Buffer.concat([text.subarray(0, cut), bad[which]!, text.subarray(cut)]);
  });
}

function deepBodies(n: number): string[] {
  return samples(fc.tuple(fc.integer({ min: 600, max: 100_000 }), fc.constantFrom('[', '{"a":')), n, 4).map(
    ([depth, open]) => {
      const close = open === '[' ? ']' : '}';
      return `{"model":"hostile-group","messages":[{"role":"user","content":${open.repeat(depth)}1${close.repeat(depth)}}]}`;
    },
  );
}

function hugeCases(n: number): HttpCase[] {
  return samples(fc.tuple(fc.integer({ min: MAX_BODY + 1, max: 4 * MAX_BODY }), fc.boolean()), n, 5).map(
    ([size, valid]) => ({
      kind: 'huge body',
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json' },
      body: valid ? json_({ ...VALID, messages: [{ role: 'user', content: 'x'.repeat(size) }] }) : 'x'.repeat(size),
    }),
  );
}

function headerCases(n: number): HttpCase[] {
  const body = json_(VALID);
  const make = (headers: Record<string, string>): HttpCase => ({
    kind: 'absurd headers',
    method: 'POST',
    path: '/v1/chat/completions',
    headers,
    body,
  });
  return samples(fc.nat(9), n, 6).map((which, i) => {
    switch (which) {
      case 0:
        return make({ 'content-type': 'application/json', 'x-huge': 'a'.repeat(20_000 + i) });
      case 1:
        return make(Object.fromEntries(Array.from({ length: 300 }, (_, k) => [`x-h${k}`, 'v'.repeat(60)])));
      case 2:
        return make({ 'content-type': 'multipart/form-data; boundary=----x' });
      case 3:
        return make({ 'content-type': 'text/plain; charset=utf-16' });
      case 4:
        return make({ authorization: `Bearer ${'k'.repeat(8_000)}`, 'x-api-key': '' });
      case 5:
        return make({ 'content-encoding': 'gzip', 'content-type': 'application/json' });
      case 6:
        return make({ 'x-forwarded-for': '1.1.1.1, '.repeat(500), accept: '*/*;q=0.'.repeat(300) });
      case 7:
        return make({ 'content-type': 'application/json', 'content-language': '\u00ff'.repeat(100) });
      case 8:
        return { ...make({ 'content-type': 'application/json' }), path: `/v1/chat/completions?${'q='.repeat(12_000)}` };
      default:
        return make({ cookie: 'a=b; '.repeat(2_000) });
    }
  });
}

function routeCases(n: number): HttpCase[] {
  const methods = ['GET', 'PUT', 'DELETE', 'PATCH', 'POST'];
  const paths = [
    '/v1/chat/completions',
    '/v1/completions',
    '/',
    '/v1',
    '/v2/chat/completions',
    '/v1/chat/completions/x',
    '/%00',
    '/..%2f..%2fetc/passwd',
    '//v1//chat',
    '/v1/models/x',
    '/metrics',
    '/status',
  ];
  return samples(fc.tuple(fc.constantFrom(...methods), fc.constantFrom(...paths)), n, 7)
    .filter(([m, p]) => !(m === 'POST' && (p === '/v1/chat/completions' || p === '/v1/completions')))
    .map(([method, path]) => ({
      kind: 'wrong route',
      method,
      path,
      headers: {},
      ...(method === 'GET' ? {} : { body: 'x' }),
    }));
}

function httpCases(): HttpCase[] {
  const post = (kind: string, body: string | Buffer, path = '/v1/chat/completions'): HttpCase => ({
    kind,
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json' },
    body,
  });
  const httpTotal = TOTAL - RAW - SLOW;
  const cases: HttpCase[] = [
    ...hugeCases(150),
    ...headerCases(600),
    ...routeCases(700),
    ...deepBodies(200).map((b) => post('deep body', b)),
    ...invalidUtf8Bodies(500).map((b) => post('invalid utf-8', b)),
    ...wrongTypeBodies(2_500).map((b, i) =>
      post('wrong types', b, i % 5 === 0 ? '/v1/completions' : '/v1/chat/completions'),
    ),
  ];
  const rest = httpTotal - cases.length;
  cases.push(
    ...badJsonBodies(rest).map((b, i) => post('bad json', b, i % 7 === 0 ? '/v1/completions' : '/v1/chat/completions')),
  );
  return cases;
}

// ---------------------------------------------------------------------------
// Sending them and judging the answers.

interface Verdict {
  kind: string;
  ok: boolean;
  why: string;
}

function judgeStatus(
  kind: string,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  text: string,
): Verdict {
  if (status < 400 || status > 499) return { kind, ok: false, why: `status ${status}: ${text.slice(0, 200)}` };
  if (text === '' && headers.connection === 'close') return { kind, ok: true, why: `node ${status}` };
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown; type?: unknown } };
    if (typeof body.error?.message === 'string' && typeof body.error.type === 'string')
      return { kind, ok: true, why: `json ${status}` };
  } catch {
    // Judged below.
  }
  return { kind, ok: false, why: `status ${status} without a JSON error: ${text.slice(0, 200)}` };
}

const CLOSED_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

async function sendHttp(c: HttpCase): Promise<Verdict> {
  try {
    const res = await request(`${origin}${c.path}`, {
      method: c.method as 'POST',
      headers: c.headers,
      dispatcher: client,
      ...(c.body !== undefined ? { body: c.body } : {}),
    });
    return judgeStatus(c.kind, res.statusCode, res.headers, await res.body.text());
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    return { kind: c.kind, ok: CLOSED_CODES.has(code), why: `client error ${code}: ${(err as Error).message}` };
  }
}

/** Raw bytes on a fresh socket: every response must be 4xx and the connection must close. */
function sendRaw(
  kind: string,
  chunks: Array<string | Buffer>,
  options: { gapMs?: number; end?: boolean; deadlineMs?: number } = {},
): Promise<Verdict> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => {
      socket.destroy();
      finish(false, 'still open at the deadline');
    }, options.deadlineMs ?? 8_000);
    const finish = (ok: boolean, why: string): void => {
      clearTimeout(deadline);
      clearInterval(timer);
      resolve({ kind, ok, why });
    };
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      const text = Buffer.concat(received).toString('latin1');
      // Interim answers (100 Continue) are not answers.
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1])).filter((s) => s >= 200);
      const bad = statuses.filter((s) => s < 400 || s > 499);
      finish(
        bad.length === 0,
        bad.length === 0
          ? `closed after ${statuses.join(',') || 'nothing'}`
          : `answered ${bad.join(',')}: ${text.slice(0, 200)}`,
      );
    });
    socket.on('connect', () => {
      if (options.gapMs === undefined) {
        for (const c of chunks) socket.write(c);
        if (options.end !== false) socket.end();
        return;
      }
      // Slow-loris: one piece per gap, forever (the pieces repeat).
      let i = 0;
      timer = setInterval(() => {
        if (socket.writable && chunks.length > 0) socket.write(chunks[i++ % chunks.length]!);
      }, options.gapMs);
    });
  });
}

const REQUEST_HEAD = 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n';

function rawCases(n: number): Array<() => Promise<Verdict>> {
  const body = json_({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] });
  const garbage: Array<Array<string | Buffer>> = [
    ['GARBAGE\r\n\r\n'],
    ['GET / HTTP/9.9\r\n\r\n'],
    ['POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nbad header line\r\n\r\n'],
    [`${REQUEST_HEAD}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    [`${REQUEST_HEAD}Transfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n`],
    [`${REQUEST_HEAD}Content-Length: -1\r\n\r\n`],
    [`${REQUEST_HEAD}Content-Length: abc\r\n\r\n`],
    [`${REQUEST_HEAD}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello`],
    ['POST /v1/chat/completions\0 HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    [`POST /${'a'.repeat(70_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`],
    [`${REQUEST_HEAD}X-Folded: a\r\n b\r\n\r\n`],
    ['post /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    [`${REQUEST_HEAD}Expect: the-unexpected\r\nContent-Length: 2\r\n\r\n{}`],
    [`${REQUEST_HEAD}Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}`],
    ['POST /v1/chat/completions HTTP/1.1\nHost: localhost\nContent-Length: 2\n\n{}'],
    // Pipelined: three bad requests, then garbage.
    [`${REQUEST_HEAD}Content-Length: 3\r\n\r\n{x}`.repeat(3) + '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'],
    // Pipelined: an unknown group, an invalid body, then a body shorter than its length (the client hangs up).
    [
      `${REQUEST_HEAD}Content-Length: ${body.length}\r\n\r\n${body}${REQUEST_HEAD}Content-Length: 2\r\n\r\n[]${REQUEST_HEAD}Content-Length: 100\r\n\r\n{"model"`,
    ],
    // A TLS hello on the plain port.
    [Buffer.from('16030100c4010000c00303', 'hex')],
  ];
  return samples(
    fc.oneof(
      fc.constantFrom(...garbage),
      fc.uint8Array({ minLength: 1, maxLength: 400 }).map((b) => [Buffer.from(b)]),
    ),
    n,
    8,
  ).map((chunks) => () => sendRaw('protocol garbage', chunks));
}

function slowCases(n: number): Array<() => Promise<Verdict>> {
  const kinds: Array<[string, Array<string | Buffer>]> = [
    ['silent connection', []],
    ['slow headers', ['POST /v1/chat/completions HTTP/1.1\r\n', 'X-Slow: a\r\n']],
    ['slow body', [`${REQUEST_HEAD}Content-Length: 100000\r\n\r\n`, '{', ' ', ' ', ' ']],
    ['slow chunked body', [`${REQUEST_HEAD}Transfer-Encoding: chunked\r\n\r\n`, '1\r\n \r\n']],
  ];
  return Array.from({ length: n }, (_, i) => {
    const [kind, chunks] = kinds[i % kinds.length]!;
    // The first piece at once, then one more every 100 ms: never idle long, never done.
    const pieces =
      chunks.length > 1 ? [chunks[0]!, ...Array.from({ length: 1000 }, () => chunks.slice(1)).flat()] : chunks;
    return () => sendRaw(kind, pieces, { gapMs: 100, deadlineMs: REQUEST_TIMEOUT + 6_000 });
  });
}

async function pool<T>(tasks: Array<() => Promise<T>>, concurrency: number): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < tasks.length) out.push(await tasks[next++]!());
    }),
  );
  return out;
}

function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

async function normalRequest(): Promise<string | null | undefined> {
  const res = await request(`${origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: json_({ model: 'good', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.statusCode, 200);
  return ((await res.body.json()) as { choices: Array<{ message: { content: string | null } }> }).choices[0]?.message
    .content;
}

it(`survives ${TOTAL} hostile requests`, async (t) => {
  assert.equal(await normalRequest(), 'still here');
  // fast-check builds large lookup tables on first use (unicode strings): not the proxy's memory.
  httpCases();
  rawCases(RAW);
  const before = heapMb();
  const started = Date.now();

  const http = httpCases().map((c) => () => sendHttp(c));
  const [slow, raw, rest] = await Promise.all([pool(slowCases(SLOW), SLOW), pool(rawCases(RAW), 32), pool(http, 64)]);
  const verdicts = [...slow, ...raw, ...rest];
  const elapsed = Date.now() - started;
  // The test's own memory: the generated bodies and what the fake upstream recorded.
  http.length = 0;
  const reachedUpstream = rejecting.requests.splice(0).length;

  assert.equal(verdicts.length, TOTAL);
  const bad = verdicts.filter((v) => !v.ok);
  const badKinds = [...new Set(bad.map((v) => `${v.kind}: ${v.why.slice(0, 160)}`))];
  assert.deepEqual(badKinds.slice(0, 20), [], `${bad.length} bad answers`);
  assert.deepEqual(problems, [], 'no unhandled rejection or exception');
  assert.ok(proxy.server.listening);
  assert.equal(await normalRequest(), 'still here', 'a normal request right after succeeds');

  const grew = heapMb() - before;
  assert.ok(grew < 30, `heap grew ${grew.toFixed(1)} MB`);
  const byKind = new Map<string, number>();
  for (const v of verdicts) {
    const key = `${v.kind}: ${v.why.slice(0, 40)}`;
    byKind.set(key, (byKind.get(key) ?? 0) + 1);
  }
  t.diagnostic(
    `${TOTAL} hostile requests in ${elapsed} ms (${reachedUpstream} reached the upstream), heap ${grew >= 0 ? '+' : ''}${grew.toFixed(1)} MB`,
  );
  for (const [k, count] of [...byKind].sort()) t.diagnostic(`  ${count} × ${k}`);
});
