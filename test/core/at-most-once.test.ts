/**
 * At most once per endpoint and request (SPEC §3.1, §3.11): a request whose
 * bytes may have reached an upstream is never sent to it again without
 * `retry`. The only resend is Go's net/http rule: a *reused* kept-alive
 * connection that died before any response byte (the upstream closed the
 * idle socket just as we reused it — e.g. uvicorn's 5 s `timeout_keep_alive`
 * against a client that keeps sockets longer).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { completionBody, json } from '../helpers/fake-upstream.js';
import { chatRequest, endpoint, group, last, runAll } from '../helpers/groups.js';
import { testRig } from '../helpers/rig.js';

const rig = testRig();

type Action = 'answer' | 'reset' | 'fin';

/**
 * An upstream that reads each request whole, then answers, resets (RST) or
 * closes (FIN) per `decide(connection number, request number on that connection)`.
 */
async function connectionAware(decide: (connection: number, onSocket: number) => Action) {
  let connections = 0;
  const perSocket = new WeakMap<Socket, { n: number; seen: number }>();
  const state = { requests: 0, connections: () => connections };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      state.requests += 1;
      const info = perSocket.get(req.socket)!;
      info.seen += 1;
      const action = decide(info.n, info.seen);
      if (action === 'reset') req.socket.resetAndDestroy();
      else if (action === 'fin') req.socket.end();
      else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(completionBody('from a')));
      }
    });
  });
  server.on('connection', (socket: Socket) => perSocket.set(socket, { n: ++connections, seen: 0 }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { baseurl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, state, server };
}

const answeredBy = (events: Awaited<ReturnType<typeof runAll>>) => {
  const end = last(events);
  return end.type === 'done' ? end.summary.endpoint : end.type;
};

describe('at most once per endpoint', () => {
  for (const action of ['reset', 'fin'] as const) {
    it(`a ${action === 'reset' ? 'reset (RST)' : 'close (FIN)'} after the upstream read the request on a fresh connection: never resent`, async () => {
      const a = await connectionAware(() => action);
      const b = await rig.upstream(json(completionBody('from b')));
      const g = group('g', [endpoint(a.baseurl, { name: 'a' }), endpoint(b.baseurl, { name: 'b' })]);
      const events = await runAll(rig.engine(), g, chatRequest());
      assert.equal(answeredBy(events), 'b');
      assert.equal(a.state.requests, 1, 'the endpoint saw the request once');
    });
  }

  it('a genuinely stale kept-alive socket: resent once on a new connection, served, and said so', async () => {
    // Answers the first request of each connection, drops the connection when it is reused.
    const a = await connectionAware((_c, onSocket) => (onSocket === 1 ? 'answer' : 'reset'));
    const b = await rig.upstream(json(completionBody('from b')));
    const g = group('g', [endpoint(a.baseurl, { name: 'a' }), endpoint(b.baseurl, { name: 'b' })]);
    const engine = rig.engine();
    assert.equal(answeredBy(await runAll(engine, g, chatRequest())), 'a');
    // Let undici put the socket back in its pool, so the next request reuses it.
    await new Promise((r) => setTimeout(r, 50));
    const events = await runAll(engine, g, chatRequest());
    assert.equal(answeredBy(events), 'a', 'served by the same endpoint after one resend');
    assert.equal(b.requests.length, 0);
    assert.equal(a.state.requests, 3, 'the first request, the one on the stale socket, its resend');
    const end = last(events);
    assert.ok(end.type === 'done');
    assert.match(end.summary.attempts[0]?.resent ?? '', /kept-alive connection was closed before any answer/);
  });

  it('100 concurrent requests with half of the first endpoint connections reset: all served, at most 100 sent there', async () => {
    const a = await connectionAware((connection, onSocket) => (connection % 2 === 1 && onSocket === 1 ? 'reset' : 'answer'));
    const b = await rig.upstream(json(completionBody('from b')));
    const g = group('g', [endpoint(a.baseurl, { name: 'a' }), endpoint(b.baseurl, { name: 'b' })], { cooldown: { failures: 1000, seconds: 30 } });
    const engine = rig.engine();
    const ends = await Promise.all(Array.from({ length: 100 }, async () => answeredBy(await runAll(engine, g, chatRequest()))));
    assert.equal(ends.filter((e) => e === 'a' || e === 'b').length, 100, 'every request answered');
    assert.ok(a.state.requests <= 100, `${a.state.requests} requests reached the first endpoint`);
    assert.ok(ends.includes('b') && ends.includes('a'));
  });

  it('the upstream Keep-Alive timeout hint is honoured: no socket is kept past it', async () => {
    const a = await connectionAware(() => 'answer');
    // Node sends `Keep-Alive: timeout=1` and closes idle sockets after 1 s.
    a.server.keepAliveTimeout = 1000;
    const g = group('g', [endpoint(a.baseurl, { name: 'a' })]);
    const engine = rig.engine();
    for (let i = 0; i < 3; i++) {
      assert.equal(answeredBy(await runAll(engine, g, chatRequest())), 'a');
      await new Promise((r) => setTimeout(r, 100));
    }
    // undici keeps a socket for the hint less a 2 s margin: a 1 s hint means no reuse at all.
    assert.equal(a.state.connections(), 3);
  });
});
