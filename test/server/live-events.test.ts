/**
 * `/ui` and `/ui/events` on the real server: the page's files need no key and
 * carry a CSP that allows nothing from elsewhere; the event stream needs the
 * key, opens with a snapshot, pushes each request's failover chain as it ends,
 * keeps pushing status, caps its viewers, and ends when the server closes it.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { FailoverEngine } from '../../src/core/engine.js';
import type { Group } from '../../src/core/types.js';
import { createProxyServer } from '../../src/server/app.js';
import type { LiveMessage } from '../../src/server/events.js';
import { createObservability } from '../../src/server/observability.js';
import { GroupRegistry } from '../../src/server/registry.js';
import { liveMessages } from '../../src/cli/live-client.js';
import { completionBody, json, startFakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';

const KEY = 'client-key-123';
const cleanups: Array<() => Promise<unknown> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function start(groups: Group[]): Promise<{ base: string; close: () => void }> {
  const engine = new FailoverEngine();
  const registry = new GroupRegistry(groups);
  const observability = createObservability(engine.health, registry, {
    defaultMetrics: false,
    liveIntervalMs: 100,
  });
  const proxy = createProxyServer({
    engine,
    groups: registry,
    apiKeys: [KEY],
    observers: observability.observers,
    extraRoutes: observability.routes,
    publicRoutes: observability.publicRoutes,
  });
  await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    observability.close();
    await proxy.shutdown(1000);
    await engine.close();
  });
  return {
    base: `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`,
    close: () => observability.close(),
  };
}

const auth = { authorization: `Bearer ${KEY}` };

describe('/ui', () => {
  it('serves the page and its files without a key, with nothing allowed from elsewhere', async () => {
    const { base } = await start([]);
    for (const [path, type] of [
      ['/ui', 'text/html'],
      ['/ui/app.js', 'text/javascript'],
      ['/ui/style.css', 'text/css'],
    ] as const) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 200, path);
      assert.ok(res.headers.get('content-type')?.startsWith(type), path);
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
      const text = await res.text();
      assert.doesNotMatch(text, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${path} loads nothing from another host`);
    }
    assert.equal((await fetch(`${base}/status`)).status, 401, 'data routes still need the key');
  });
});

describe('/ui/events', () => {
  it('needs the key, opens with a snapshot and pushes each request with its failover chain', async () => {
    const down = await startFakeUpstream(json({ error: { message: 'slow down' } }, 429));
    const good = await startFakeUpstream(json(completionBody('hi')));
    cleanups.push(
      () => down.close(),
      () => good.close(),
    );
    const { base } = await start([
      group('chat', [
        endpoint(down.baseurl, { name: 'a' }),
        endpoint(good.baseurl, { name: 'b', price: { input: 1, output: 1 } }),
      ]),
    ]);

    assert.equal((await fetch(`${base}/ui/events`)).status, 401);
    const head = await fetch(`${base}/ui/events`, { headers: auth });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'text/event-stream');
    const reader = head.body!.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /^data: \{"type":"snapshot"/);
    await reader.cancel();
    const stream = liveMessages(base, KEY, new AbortController().signal);
    const first = (await stream.next()).value as LiveMessage;
    assert.equal(first.type, 'snapshot');
    assert.ok(
      first.type === 'snapshot' &&
        first.status.groups[0]?.name === 'chat' &&
        first.series.length === 60 &&
        first.recent.length === 0,
    );

    const answer = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(answer.status, 200);
    const id = answer.headers.get('x-request-id');
    let pushed: LiveMessage | undefined;
    let statusAfter: LiveMessage | undefined;
    for await (const message of stream) {
      if (message.type === 'request') pushed = message;
      if (message.type === 'status' && pushed !== undefined) {
        statusAfter = message;
        break;
      }
    }
    assert.ok(pushed?.type === 'request');
    assert.equal(pushed.request.id, id);
    assert.deepEqual(
      pushed.request.attempts.map((a) => [a.n, a.endpoint, a.ok, a.class, a.status]),
      [
        [1, 'a', false, 'rate_limit', 429],
        [2, 'b', true, null, 200],
      ],
    );
    assert.equal(pushed.request.usage?.cost, 12 / 1_000_000);
    assert.ok(statusAfter?.type === 'status');
    const a = statusAfter.status.groups[0]?.endpoints.find((e) => e.name === 'a');
    assert.equal(a?.state, 'cooling');
    assert.equal(statusAfter.series.at(-1)?.failures.rate_limit, 1);
    await stream.return(undefined);

    const later = liveMessages(base, KEY, new AbortController().signal);
    const snapshot = (await later.next()).value as LiveMessage;
    assert.ok(
      snapshot.type === 'snapshot' && snapshot.recent.map((r) => r.id).includes(id!),
      'a late viewer gets recent requests',
    );
    await later.return(undefined);
  });

  it('ends every stream when closed, so a shutdown is not held by an open dashboard', async () => {
    const { base, close } = await start([]);
    const stream = liveMessages(base, KEY, new AbortController().signal);
    assert.equal((await stream.next()).value?.type, 'snapshot');
    const ended = (async () => {
      for await (const _ of stream) void _;
      return 'ended';
    })();
    close();
    assert.equal(await ended, 'ended');
  });

  it('turns away viewers past the cap with 503 instead of holding more sockets', async () => {
    const { base } = await start([]);
    const open: Response[] = [];
    for (let i = 0; i < 32; i++) open.push(await fetch(`${base}/ui/events`, { headers: auth }));
    assert.ok(open.every((r) => r.status === 200));
    const refused = await fetch(`${base}/ui/events`, { headers: auth });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'too_many_viewers');
    for (const r of open) await r.body?.cancel();
  });
});
