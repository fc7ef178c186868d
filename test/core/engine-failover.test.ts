/**
 * The engine against misbehaving upstreams on loopback: every failure class of
 * SPEC §3.2 makes it move on, and the client only ever sees the answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, Dispatcher } from 'undici';
import { REFUSED_RECENTLY_MS } from '../../src/core/refusals.js';
import { FailoverEngine } from '../../src/core/engine.js';
import type { Behaviour, FakeUpstream } from '../helpers/fake-upstream.js';
import {
  chunk,
  completionBody,
  json,
  sse,
  startFakeUpstream,
  wordStream,
} from '../helpers/fake-upstream.js';
import { chatRequest, endpoint, group, last, refusedBaseurl, runAll, streamedContent } from '../helpers/groups.js';
import type { EngineEvent, FailureClass } from '../../src/core/types.js';

const healthyAnswer = 'all good';

let healthy: FakeUpstream;
let bad: FakeUpstream;
const engines: FailoverEngine[] = [];

before(async () => {
  healthy = await startFakeUpstream((_n, req) =>
    req.body.stream === true ? sse(wordStream(['all', ' good'])) : json(completionBody(healthyAnswer)),
  );
  bad = await startFakeUpstream(json(completionBody('unused')));
});

after(async () => {
  await Promise.all(engines.map((e) => e.close()));
  await healthy.close();
  await bad.close();
});

function newEngine(): FailoverEngine {
  const engine = new FailoverEngine();
  engines.push(engine);
  return engine;
}

/** Run one request over [bad, healthy] with `behaviour` on the bad one. */
async function failOver(behaviour: Behaviour, stream: boolean, timeoutMs = 2000): Promise<EngineEvent[]> {
  bad.setBehaviour(behaviour);
  const g = group('g', [
    endpoint(bad.baseurl, { name: 'bad', timeoutMs }),
    endpoint(healthy.baseurl, { name: 'good' }),
  ]);
  return runAll(newEngine(), g, chatRequest({ stream }));
}

const stuckOrigin = 'http://127.0.0.1:9';

/** A real Agent, except that requests to `origin` get `dispatch` instead. Close the agent after. */
function dispatcherExcept(origin: string, dispatch: () => boolean): { dispatcher: Dispatcher; agent: Agent } {
  const agent = new Agent();
  const dispatcher = new (class extends Dispatcher {
    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      return String(options.origin) === origin ? dispatch() : agent.dispatch(options, handler);
    }
  })();
  return { dispatcher, agent };
}

function failures(events: EngineEvent[]) {
  return events.flatMap((e) => (e.type === 'attempt_failed' ? [e] : []));
}

function assertFailedOverWith(events: EngineEvent[], klass: FailureClass, status?: number, stream = false) {
  const [first, ...rest] = failures(events);
  assert.ok(first, 'the bad endpoint should have failed');
  assert.equal(rest.length, 0);
  assert.equal(first.endpoint, 'bad');
  assert.equal(first.failure.class, klass, `class (message: ${first.failure.message})`);
  if (status !== undefined) assert.equal(first.failure.status, status);
  const done = last(events);
  assert.equal(done.type, 'done');
  if (done.type === 'done') assert.equal(done.summary.endpoint, 'good');
  if (stream) {
    assert.equal(streamedContent(events), healthyAnswer);
  } else {
    const completion = events.find((e) => e.type === 'completion');
    assert.ok(completion && completion.type === 'completion');
    assert.equal(completion.completion.choices[0]?.message.content, healthyAnswer);
  }
  return first.failure;
}

describe('failure classes (each makes the engine move on)', () => {
  it('network: connection refused', async () => {
    const g = group('g', [
      endpoint(await refusedBaseurl(), { name: 'bad' }),
      endpoint(healthy.baseurl, { name: 'good' }),
    ]);
    const events = await runAll(newEngine(), g, chatRequest());
    const failure = assertFailedOverWith(events, 'network');
    assert.match(failure.message, /refused/);
  });

  it('a port that refused a moment ago fails at once, and is connected to again soon after', async () => {
    const baseurl = await refusedBaseurl();
    const engine = newEngine();
    const g = group('g', [endpoint(baseurl, { name: 'bad' }), endpoint(healthy.baseurl, { name: 'good' })]);
    const first = assertFailedOverWith(await runAll(engine, g, chatRequest()), 'network');
    assert.match(first.message, /connection refused/);
    assert.doesNotMatch(first.message, /ago/);
    // Under load every request would pay for a connect and its error: the next one does not try.
    const second = assertFailedOverWith(await runAll(engine, g, chatRequest()), 'network');
    assert.match(second.message, /connection refused \(ECONNREFUSED\) \d+ ms ago; not tried again within/);
    // The server comes back on its port: a moment later it is used, not skipped.
    const restarted = await startFakeUpstream(json(completionBody('back again')), Number(new URL(baseurl).port));
    try {
      await new Promise((r) => setTimeout(r, REFUSED_RECENTLY_MS + 20));
      const events = await runAll(engine, g, chatRequest());
      const done = last(events);
      assert.equal(done.type, 'done');
      assert.equal(done.type === 'done' && done.summary.endpoint, 'bad');
      assert.equal(restarted.requests.length, 1);
    } finally {
      await restarted.close();
    }
  });

  it('network: connection reset on arrival', async () => {
    assertFailedOverWith(await failOver({ kind: 'reset' }, false), 'network');
  });

  it('timeout: no response head within timeout', async () => {
    const started = Date.now();
    const failure = assertFailedOverWith(await failOver({ kind: 'hang' }, false, 300), 'timeout');
    assert.ok(Date.now() - started < 2000);
    assert.match(failure.message, /0\.3 s/);
  });

  it('timeout: a connection that is never made (a blackholed host) still ends at the endpoint timeout', async () => {
    // undici hands the request to a socket only once it connects; this one never does.
    const { dispatcher, agent } = dispatcherExcept(stuckOrigin, () => true);
    try {
      const engine = new FailoverEngine({ dispatcher });
      const g = group('g', [endpoint(`${stuckOrigin}/v1`, { name: 'bad', timeoutMs: 300 }), endpoint(healthy.baseurl, { name: 'good' })]);
      const started = Date.now();
      const failure = assertFailedOverWith(await runAll(engine, g, chatRequest({ stream: false })), 'timeout');
      assert.match(failure.message, /no response within 0.3 s/);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    } finally {
      await agent.close();
    }
  });

  it('network: a dispatcher that throws costs the attempt, not the request', async () => {
    const { dispatcher, agent } = dispatcherExcept(stuckOrigin, () => {
      throw new Error('no route to host');
    });
    try {
      const g = group('g', [endpoint(`${stuckOrigin}/v1`, { name: 'bad' }), endpoint(healthy.baseurl, { name: 'good' })]);
      const failure = assertFailedOverWith(await runAll(new FailoverEngine({ dispatcher }), g, chatRequest({ stream: true })), 'network', undefined, true);
      assert.match(failure.message, /no route to host/);
    } finally {
      await agent.close();
    }
  });

  it('timeout: only keep-alive comments, never a first token', async () => {
    const items = Array.from({ length: 20 }, () => ({ comment: 'OPENROUTER PROCESSING' }));
    const behaviour = sse(items, { gapMs: 50, end: 'hang' });
    assertFailedOverWith(await failOver(behaviour, true, 400), 'timeout', undefined, true);
  });

  const statuses: Array<[number, FailureClass]> = [
    [401, 'auth'],
    [402, 'payment'],
    [403, 'permission'],
    [404, 'not_found'],
    [400, 'bad_request'],
    [413, 'bad_request'],
    [422, 'bad_request'],
    [500, 'server'],
    [502, 'server'],
  ];
  for (const [status, klass] of statuses) {
    it(`${klass}: HTTP ${status}`, async () => {
      const body = { error: { message: `upstream said ${status}`, type: 'x', code: status } };
      const failure = assertFailedOverWith(await failOver(json(body, status), false), klass, status);
      assert.equal(failure.message, `upstream said ${status}`);
    });
  }

  it('rate_limit: 429 remembers Retry-After', async () => {
    const failure = assertFailedOverWith(
      await failOver(json({ error: { message: 'slow down' } }, 429, { 'retry-after': '7' }), false),
      'rate_limit',
      429,
    );
    assert.equal(failure.retryAfterMs, 7000);
  });

  it('server: 503 with a Chutes {"detail"} body, message extracted', async () => {
    const detail = "No instances available (yet) for chute_id='abc'";
    const failure = assertFailedOverWith(await failOver(json({ detail }, 503), false), 'server', 503);
    assert.equal(failure.message, detail);
  });

  it('server: a 503 with a 2 MB error page is cut after its first 64 KB and named by its title', async () => {
    const body = `<html><head><title>Service Unavailable</title></head><body>${'<p>busy</p>'.repeat(200_000)}</body></html>`;
    const behaviour: Behaviour = { kind: 'text', status: 503, body, contentType: 'text/html' };
    const failure = assertFailedOverWith(await failOver(behaviour, false), 'server', 503);
    assert.match(failure.message, /Service Unavailable/);
  });

  it('server: Cloudflare 524 HTML page', async () => {
    const html = '<!DOCTYPE html><html><head><title>example.com | 524: A timeout occurred</title></head><body>…</body></html>';
    const failure = assertFailedOverWith(
      await failOver({ kind: 'text', status: 524, body: html, contentType: 'text/html' }, true),
      'server',
      524,
      true,
    );
    assert.match(failure.message, /524: A timeout occurred/);
    assert.doesNotMatch(failure.message, /<html/);
  });

  it('invalid_response: 200 carrying an error object (OpenRouter)', async () => {
    const body = { error: { message: 'Provider returned error', code: 502, metadata: { raw: 'upstream overloaded' } } };
    const failure = assertFailedOverWith(await failOver(json(body), false), 'invalid_response');
    assert.match(failure.message, /Provider returned error: upstream overloaded/);
  });

  it('invalid_response: 200 with an empty completion', async () => {
    assertFailedOverWith(await failOver(json(completionBody('')), false), 'invalid_response');
  });

  it('invalid_response: 200 without choices', async () => {
    assertFailedOverWith(await failOver(json({ id: 'x', object: 'chat.completion', choices: [] }), false), 'invalid_response');
  });

  it('invalid_response: 200 with an HTML body', async () => {
    const behaviour: Behaviour = { kind: 'text', status: 200, body: '<html><title>Login</title></html>', contentType: 'text/html' };
    assertFailedOverWith(await failOver(behaviour, false), 'invalid_response');
  });

  it('invalid_response: a 200 body past 64 MiB is not held, the next endpoint answers', async () => {
    const behaviour: Behaviour = { kind: 'text', status: 200, body: `{"pad":"${'x'.repeat(65 * 1024 * 1024)}"}`, contentType: 'application/json' };
    const failure = assertFailedOverWith(await failOver(behaviour, false, 10_000), 'invalid_response');
    assert.match(failure.message, /larger than 64 MiB/);
  });

  it('invalid_response: a stream with only comments that ends', async () => {
    const behaviour = sse([{ comment: 'keep-alive' }, { comment: 'keep-alive' }]);
    assertFailedOverWith(await failOver(behaviour, true), 'invalid_response', undefined, true);
  });

  it('invalid_response: an error as the first event', async () => {
    const behaviour = sse([{ data: { error: { message: 'model overloaded', code: 'server_error' } } }], { done: false });
    const failure = assertFailedOverWith(await failOver(behaviour, true), 'invalid_response', undefined, true);
    assert.equal(failure.message, 'model overloaded');
  });

  it('invalid_response: a Chutes bare error line before any token', async () => {
    const behaviour = sse([chunk({ role: 'assistant', content: '' }), { raw: '{"error": "Unhandled exception during response stream"}' }], {
      done: false,
    });
    assertFailedOverWith(await failOver(behaviour, true), 'invalid_response', undefined, true);
  });

  it('network: a stream reset before its first token', async () => {
    const behaviour = sse([chunk({ role: 'assistant', content: '' })], { end: 'reset' });
    assertFailedOverWith(await failOver(behaviour, true), 'network', undefined, true);
  });

  it('invalid_response: a malformed chunk before commit', async () => {
    const behaviour = sse([{ raw: 'data: {"choices": [\n\n' }]);
    assertFailedOverWith(await failOver(behaviour, true), 'invalid_response', undefined, true);
  });

  it('a non-streaming client never sees a stream that broke half-way', async () => {
    const behaviour = sse([chunk({ content: 'half an ' }), chunk({ content: 'answ' })], { end: 'reset' });
    bad.setBehaviour(behaviour);
    const g = group('g', [endpoint(bad.baseurl, { name: 'bad', stream: true }), endpoint(healthy.baseurl, { name: 'good' })]);
    const events = await runAll(newEngine(), g, chatRequest());
    assertFailedOverWith(events, 'stream_interrupted');
    assert.ok(!events.some((e) => e.type === 'commit' && e.endpoint === 'bad'));
  });
});

describe('after commit', () => {
  async function streamFrom(behaviour: Behaviour, timeoutMs = 2000) {
    bad.setBehaviour(behaviour);
    // Without resume (SPEC §3.4); resuming is tested in engine-resilience.test.ts.
    const g = group('g', [endpoint(bad.baseurl, { name: 'bad', timeoutMs }), endpoint(healthy.baseurl, { name: 'good' })], { resume: false });
    return runAll(newEngine(), g, chatRequest({ stream: true }));
  }

  function assertInterrupted(events: EngineEvent[], sentText: string) {
    const end = last(events);
    assert.equal(end.type, 'interrupted');
    if (end.type !== 'interrupted') return;
    assert.equal(end.failure.class, 'stream_interrupted');
    assert.equal(end.error.error.code, 'stream_interrupted');
    assert.ok(!('choices' in end.error));
    assert.equal(streamedContent(events), sentText);
    // Never spliced with another endpoint's text.
    assert.ok(!events.some((e) => e.type === 'attempt_start' && e.endpoint === 'good'));
    assert.ok(!events.some((e) => e.type === 'chunks' && e.chunks.some((c) => c.choices[0]?.finish_reason)));
  }

  it('a cut after K deltas ends with an in-band stream_interrupted error', async () => {
    const events = await streamFrom(sse([chunk({ content: 'one' }), chunk({ content: ' two' })], { end: 'reset' }));
    assertInterrupted(events, 'one two');
  });

  it('a stream that ends without finish_reason is interrupted', async () => {
    const events = await streamFrom(sse([chunk({ content: 'one' }), chunk({ content: ' two' })]));
    assertInterrupted(events, 'one two');
  });

  it('a stall longer than timeout after commit is interrupted', async () => {
    const events = await streamFrom(sse([chunk({ content: 'one' })], { end: 'hang' }), 300);
    assertInterrupted(events, 'one');
  });

  it('a malformed chunk after commit is interrupted', async () => {
    // The gap makes the bad chunk arrive after the commit: in the same read as
    // the first token it would be a silent failover instead.
    const events = await streamFrom(sse([chunk({ content: 'one' }), { raw: 'data: {"choices":[{"delta":\n\n' }], { gapMs: 50 }));
    assertInterrupted(events, 'one');
  });

  it("an OpenRouter error chunk with finish_reason 'error' is interrupted", async () => {
    const errorChunk = {
      data: {
        id: 'x',
        object: 'chat.completion.chunk',
        error: { code: 'server_error', message: 'Provider disconnected unexpectedly' },
        choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }],
      },
    };
    const events = await streamFrom(sse([chunk({ content: 'one' }), errorChunk], { done: false, gapMs: 50 }));
    assertInterrupted(events, 'one');
    const end = last(events);
    assert.ok(end.type === 'interrupted' && end.error.error.message.includes('Provider disconnected unexpectedly'));
  });

  it('a stream with finish_reason but no [DONE] is complete', async () => {
    const events = await streamFrom(sse([chunk({ content: 'one' }), chunk({}, 'stop')], { done: false }));
    assert.equal(last(events).type, 'done');
    assert.equal(streamedContent(events), 'one');
  });
});

describe('cancellation', () => {
  it('aborting the signal aborts the upstream at once', async () => {
    const slow = await startFakeUpstream(sse(wordStream(['a', 'b', 'c', 'd', 'e']), { gapMs: 300 }));
    try {
      const controller = new AbortController();
      const g = group('g', [endpoint(slow.baseurl, { name: 'slow' }), endpoint(healthy.baseurl, { name: 'good' })]);
      const engine = newEngine();
      const events: EngineEvent[] = [];
      const started = Date.now();
      for await (const event of engine.run({ requestId: 'c1', group: g, body: chatRequest({ stream: true }), signal: controller.signal })) {
        events.push(event);
        if (event.type === 'commit') controller.abort();
      }
      assert.equal(last(events).type, 'cancelled');
      assert.ok(Date.now() - started < 1500);
      assert.ok(!events.some((e) => e.type === 'attempt_start' && e.endpoint === 'good'), 'no failover after cancel');
      await waitFor(() => slow.openSockets() === 0, 1000);
      // A cancel proves nothing about the endpoint.
      assert.equal(engine.health.snapshot(g.endpoints[0]!).consecutiveFailures, 0);
    } finally {
      await slow.close();
    }
  });
});

async function waitFor(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
