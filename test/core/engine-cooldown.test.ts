/** Cooldown with half-open probes (SPEC §3.7) and the all-failed outcome (SPEC §3.8). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FailoverEngine } from '../../src/core/engine.js';
import { HealthTracker } from '../../src/core/health.js';
import type { EngineEvent } from '../../src/core/types.js';
import { completionBody, json, type Behaviour } from '../helpers/fake-upstream.js';
import { chatRequest, endpoint, group, last, runAll } from '../helpers/groups.js';
import { testRig } from '../helpers/rig.js';

const { upstream, engine } = testRig();

function engineAt(clock: { now: number }): FailoverEngine {
  return engine({ health: new HealthTracker(() => clock.now) });
}

const starts = (events: EngineEvent[]) => events.flatMap((e) => (e.type === 'attempt_start' ? [e.endpoint] : []));

describe('cooldown', () => {
  it('auth, permission, payment and not_found cool down at once for 300 s', async () => {
    for (const status of [401, 402, 403, 404]) {
      const clock = { now: 1_000_000 };
      const engine = engineAt(clock);
      const dead = await upstream(json({ error: { message: 'no' } }, status));
      const good = await upstream(json(completionBody('ok')));
      const g = group('g', [endpoint(dead.baseurl, { name: 'dead' }), endpoint(good.baseurl, { name: 'good' })]);
      await runAll(engine, g, chatRequest());
      const events = await runAll(engine, g, chatRequest());
      assert.deepEqual(starts(events), ['good'], `after ${status} the dead endpoint is skipped`);
      assert.equal(dead.requests.length, 1);
      const snap = engine.health.snapshot(g.endpoints[0]!);
      assert.equal(snap.state, 'cooling');
      assert.equal(snap.until, 1_000_000 + 300_000);
      clock.now += 299_000;
      assert.deepEqual(starts(await runAll(engine, g, chatRequest())), ['good']);
      assert.equal(dead.requests.length, 1);
    }
  });

  it('rate_limit cools for Retry-After, then the first request probes (half-open)', async () => {
    const clock = { now: 5_000_000 };
    const engine = engineAt(clock);
    const limited = await upstream((n) => (n === 1 ? json({ error: { message: 'later' } }, 429, { 'retry-after': '12' }) : json(completionBody('back'))));
    const good = await upstream(json(completionBody('ok')));
    const g = group('g', [endpoint(limited.baseurl, { name: 'limited' }), endpoint(good.baseurl, { name: 'good' })]);
    await runAll(engine, g, chatRequest());
    assert.equal(engine.health.snapshot(g.endpoints[0]!).until, 5_012_000);
    assert.deepEqual(starts(await runAll(engine, g, chatRequest())), ['good']);
    clock.now += 12_001;
    assert.equal(engine.health.snapshot(g.endpoints[0]!).state, 'half_open');
    const probe = await runAll(engine, g, chatRequest());
    // The probe goes first and is hedged at once, so it never costs the user latency.
    assert.deepEqual(starts(probe), ['limited', 'good']);
    assert.equal(last(probe).type, 'done');
    // Whichever answered first, the probe's own answer closes the cooldown.
    await until(() => engine.health.snapshot(g.endpoints[0]!).state === 'ok');
    assert.equal(limited.requests.length, 2);
  });

  it('a failed half-open probe reopens the cooldown', async () => {
    const clock = { now: 0 };
    const engine = engineAt(clock);
    const dead = await upstream(json({ error: { message: 'bad key' } }, 401));
    const good = await upstream(json(completionBody('ok')));
    const g = group('g', [endpoint(dead.baseurl, { name: 'dead' }), endpoint(good.baseurl, { name: 'good' })]);
    await runAll(engine, g, chatRequest());
    clock.now = 300_001;
    assert.deepEqual(starts(await runAll(engine, g, chatRequest())), ['dead', 'good']);
    await until(() => engine.health.snapshot(g.endpoints[0]!).state === 'cooling');
    assert.deepEqual(starts(await runAll(engine, g, chatRequest())), ['good']);
  });

  it('transient failures cool down only after 3 consecutive ones (group option tunes it)', async () => {
    const clock = { now: 0 };
    const engine = engineAt(clock);
    const flaky = await upstream(json({ error: { message: 'oops' } }, 500));
    const good = await upstream(json(completionBody('ok')));
    const eps = [endpoint(flaky.baseurl, { name: 'flaky' }), endpoint(good.baseurl, { name: 'good' })];
    const g = group('g', eps);
    for (let i = 0; i < 3; i++) assert.deepEqual(starts(await runAll(engine, g, chatRequest())), ['flaky', 'good']);
    assert.deepEqual(starts(await runAll(engine, g, chatRequest())), ['good']);
    assert.equal(engine.health.snapshot(eps[0]!).until, 30_000);

    const tuned = group('t', [endpoint(flaky.baseurl, { name: 'flaky2', model: 'other' }), eps[1]!], { cooldown: { failures: 1, seconds: 5 } });
    await runAll(engine, tuned, chatRequest());
    assert.deepEqual(starts(await runAll(engine, tuned, chatRequest())), ['good']);
    assert.equal(engine.health.snapshot(tuned.endpoints[0]!).until, 5_000);
  });

  it('a success resets the consecutive count', async () => {
    const engine = engineAt({ now: 0 });
    const flaky = await upstream((n) => (n % 3 === 0 ? json(completionBody('ok')) : json({ error: { message: 'x' } }, 503)));
    const good = await upstream(json(completionBody('ok')));
    const g = group('g', [endpoint(flaky.baseurl, { name: 'flaky' }), endpoint(good.baseurl, { name: 'good' })]);
    for (let i = 0; i < 6; i++) await runAll(engine, g, chatRequest());
    assert.equal(flaky.requests.length, 6, 'never cooled: no 3 failures in a row');
  });

  it('bad_request never cools an endpoint', async () => {
    const engine = engineAt({ now: 0 });
    const picky = await upstream(json({ error: { message: 'bad param' } }, 400));
    const good = await upstream(json(completionBody('ok')));
    const g = group('g', [endpoint(picky.baseurl, { name: 'picky' }), endpoint(good.baseurl, { name: 'good' })]);
    for (let i = 0; i < 5; i++) assert.deepEqual(starts(await runAll(engine, g, chatRequest())), ['picky', 'good']);
  });

  it('cooling endpoints are still tried, last, when everything else fails', async () => {
    const clock = { now: 0 };
    const engine = engineAt(clock);
    const first = await upstream((n) => (n === 1 ? json({ error: { message: 'x' } }, 401) : json(completionBody('from first'))));
    const second = await upstream(json({ error: { message: 'down' } }, 503));
    const g = group('g', [endpoint(first.baseurl, { name: 'first' }), endpoint(second.baseurl, { name: 'second' })]);
    await runAll(engine, g, chatRequest());
    const events = await runAll(engine, g, chatRequest());
    assert.deepEqual(starts(events), ['second', 'first']);
    const cooledStart = events.find((e) => e.type === 'attempt_start' && e.endpoint === 'first');
    assert.ok(cooledStart?.type === 'attempt_start' && cooledStart.cooling);
    const done = last(events);
    assert.ok(done.type === 'done' && done.summary.endpoint === 'first');
  });
});

describe('all endpoints failed', () => {
  async function allFail(...behaviours: Behaviour[]) {
    const engine = engineAt({ now: 0 });
    const eps = [];
    for (const [i, b] of behaviours.entries()) eps.push(endpoint((await upstream(b)).baseurl, { name: `e${i + 1}`, timeoutMs: 300 }));
    const events = await runAll(engine, group('think-stream', eps), chatRequest({ stream: true }));
    const end = last(events);
    assert.equal(end.type, 'failed');
    assert.ok(!events.some((e) => e.type === 'chunks' || e.type === 'commit'));
    if (end.type !== 'failed') throw new Error('unreachable');
    assert.equal(end.headers['x-should-retry'], 'false');
    assert.equal(end.error.error.code, 'all_endpoints_failed');
    assert.equal(end.error.error.type, 'failproxy_error');
    return end;
  }

  it('the same 4xx everywhere is returned as that status with the upstream message', async () => {
    const end = await allFail(json({ error: { message: 'context too long' } }, 400), json({ detail: 'context too long' }, 400));
    assert.equal(end.status, 400);
    assert.match(end.error.error.message, /\[e1\] bad_request 400: context too long; \[e2\] bad_request 400: context too long/);
  });

  it('all rate-limited gives 429 with the smallest Retry-After', async () => {
    const end = await allFail(json({ error: { message: 'a' } }, 429, { 'retry-after': '20' }), json({ error: { message: 'b' } }, 429, { 'retry-after': '3' }));
    assert.equal(end.status, 429);
    assert.equal(end.headers['retry-after'], '3');
  });

  it('all timed out gives 504', async () => {
    assert.equal((await allFail({ kind: 'hang' }, { kind: 'hang' })).status, 504);
  });

  it('mixed failures give 502 and a per-attempt trace', async () => {
    const end = await allFail(json({ error: { message: 'x' } }, 401), { kind: 'reset' }, json({ detail: 'No instances available' }, 503));
    assert.equal(end.status, 502);
    const attempts = end.error.error.attempts as Array<Record<string, unknown>>;
    assert.deepEqual(attempts.map((a) => [a.endpoint, a.class, a.status]), [['e1', 'auth', 401], ['e2', 'network', null], ['e3', 'server', 503]]);
    for (const a of attempts) assert.equal(typeof a.ms, 'number');
    assert.match(end.error.error.message, /^All 3 endpoints for 'think-stream' failed: /);
  });

  it('skipped endpoints are named with their reason', async () => {
    const engine = engineAt({ now: 0 });
    const g = group('g', [], { skipped: [{ name: 'or', reason: 'missing env OPENROUTER_API_KEY' }] });
    const end = last(await runAll(engine, g, chatRequest()));
    assert.ok(end.type === 'failed');
    assert.match(end.error.error.message, /\[or\] skipped: missing env OPENROUTER_API_KEY/);
  });

  it('an upstream message echoing the key never carries it', async () => {
    const engine = engineAt({ now: 0 });
    const echo = await upstream(json({ error: { message: 'Incorrect API key provided: sk-test-0123456789abcdef' } }, 401));
    const end = last(await runAll(engine, group('g', [endpoint(echo.baseurl)]), chatRequest()));
    assert.ok(end.type === 'failed');
    assert.doesNotMatch(JSON.stringify(end), /0123456789abcdef/);
    assert.match(end.error.error.message, /\[REDACTED\]/);
  });
});

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
