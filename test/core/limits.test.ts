/**
 * Per-lane limits (issue 15): `max_concurrency`, `rpm` and `tpm`, with short
 * windows standing in for a minute. A saturated lane is skipped, never failed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineEvent, FailedEvent } from '../../src/core/types.js';
import { completionBody, json, type Behaviour } from '../helpers/fake-upstream.js';
import { chatRequest, last, runAll } from '../helpers/groups.js';
import { KEYS, perKey, poolGroup } from '../helpers/pools.js';
import { testRig } from '../helpers/rig.js';

const { upstream, engine } = testRig();

describe('per-lane limits', () => {
  it('max_concurrency: 2 with 10 concurrent requests never has more than 2 in flight and loses none', async () => {
    let inFlight = 0;
    let peak = 0;
    const up = await upstream(() => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      setTimeout(() => (inFlight -= 1), 60);
      return { kind: 'json', body: completionBody('ok'), delayMs: 60 } satisfies Behaviour;
    });
    const g = poolGroup({ endpoints: [{ name: 'one', baseurl: up.baseurl, model: 'm', apikey: ['${K1}'], max_concurrency: 2 }] });
    const e = engine();
    const runs = await Promise.all(Array.from({ length: 10 }, (_, i) => runAll(e, g, chatRequest({ messages: [{ role: 'user', content: `q${i}` }] }))));
    assert.deepEqual(
      runs.map((r) => last(r).type),
      Array(10).fill('done'),
    );
    assert.equal(up.requests.length, 10);
    assert.ok(peak <= 2, `at most 2 in flight at the key, saw ${peak}`);
    assert.equal(e.health.snapshot(g.endpoints[0]!).state, 'ok', 'a saturated lane is never cooled');
  });

  it('a saturated lane is skipped for a sibling, not failed', async () => {
    const up = await upstream({ kind: 'json', body: completionBody('ok'), delayMs: 80 });
    const g = poolGroup({
      endpoints: [{ name: 'pool', baseurl: up.baseurl, model: 'm', keys: 'fill_first', apikey: ['${K1}', '${K2}'], max_concurrency: 1 }],
    });
    const e = engine();
    const runs = await Promise.all([1, 2].map((i) => runAll(e, g, chatRequest({ messages: [{ role: 'user', content: `q${i}` }] }))));
    assert.ok(runs.every((r) => last(r).type === 'done'));
    assert.deepEqual(perKey(up), { [KEYS.K1]: 1, [KEYS.K2]: 1 });
    for (const r of runs) assert.equal(r.filter((ev) => ev.type === 'attempt_failed').length, 0);
  });

  it('a request cancelled while it waits for a slot leaves nothing held', async () => {
    const up = await upstream({ kind: 'json', body: completionBody('ok'), delayMs: 200 });
    const g = poolGroup({ endpoints: [{ name: 'one', baseurl: up.baseurl, model: 'm', apikey: ['${K1}'], max_concurrency: 1 }] });
    const e = engine();
    const first = runAll(e, g, chatRequest());
    await new Promise((r) => setTimeout(r, 50));
    const controller = new AbortController();
    const waiting = runAll(e, g, chatRequest(), controller.signal);
    await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    assert.equal(last(await waiting).type, 'cancelled');
    assert.equal(last(await first).type, 'done');
    assert.equal(last(await runAll(e, g, chatRequest())).type, 'done', 'the slot is free again');
    assert.equal(up.requests.length, 2);
  });

  it('rpm holds over its window (a short window standing in for a minute)', async () => {
    const arrivals: number[] = [];
    const up = await upstream(() => {
      arrivals.push(Date.now());
      return json(completionBody('ok'));
    });
    const g = poolGroup({ endpoints: [{ name: 'one', baseurl: up.baseurl, model: 'm', apikey: ['${K1}'], rpm: 3, limit_window: 1, timeout: 5 }] });
    const e = engine();
    // Warm the connection pool, so the first window is not stretched by connecting.
    await Promise.all([1, 2, 3].map(() => runAll(e, poolGroup({ endpoints: [{ name: 'warm', baseurl: up.baseurl, model: 'm', apikey: 'kw' }] }), chatRequest())));
    arrivals.length = 0;
    const runs = await Promise.all(Array.from({ length: 9 }, (_, i) => runAll(e, g, chatRequest({ messages: [{ role: 'user', content: `q${i}` }] }))));
    assert.ok(runs.every((r) => last(r).type === 'done'), 'every request waits its turn and is answered');
    arrivals.sort((a, b) => a - b);
    for (let i = 3; i < arrivals.length; i++) {
      // The limiter counts when a request leaves; on a loaded machine it may arrive up to ~0.1 s later.
      assert.ok(arrivals[i]! - arrivals[i - 3]! >= 850, `no more than 3 requests in any 1 s window (${arrivals.map((t) => t - arrivals[0]!).join(', ')})`);
    }
  });

  it('when the wait does not fit the deadline, the answer is 429 with Retry-After and says so', async () => {
    const up = await upstream(json(completionBody('ok')));
    const g = poolGroup({
      deadline: 3,
      endpoints: [{ name: 'one', baseurl: up.baseurl, model: 'm', apikey: ['${K1}', '${K2}'], rpm: 1, limit_window: 30 }],
    });
    const e = engine();
    assert.equal(last(await runAll(e, g, chatRequest())).type, 'done');
    assert.equal(last(await runAll(e, g, chatRequest())).type, 'done');
    const refused = last(await runAll(e, g, chatRequest())) as FailedEvent;
    assert.equal(refused.type, 'failed');
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers['retry-after']) >= 25, `Retry-After ${refused.headers['retry-after']}`);
    assert.match(refused.error.error.message, /local limit \(rpm 1\)/);
    assert.equal(up.requests.length, 2, 'nothing is sent past the limit');
    assert.equal(e.health.snapshot(g.endpoints[0]!).state, 'ok');
  });

  it('tpm charges an estimate, corrected by the reported usage', async () => {
    const up = await upstream(json(completionBody('ok', { usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 } })));
    const g = poolGroup({
      deadline: 3,
      endpoints: [{ name: 'one', baseurl: up.baseurl, model: 'm', apikey: ['${K1}'], tpm: 250, limit_window: 30 }],
    });
    const e = engine();
    // Each request is estimated at about 98 tokens (max_tokens 90 + the prompt) but uses 20:
    // uncorrected, the third would not fit in 250; corrected, eight do.
    const big = (): ReturnType<typeof chatRequest> => chatRequest({ max_tokens: 90 });
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) outcomes.push(last(await runAll(e, g, big())).type);
    assert.deepEqual(outcomes, Array(8).fill('done'), 'usage corrected the estimates');
    const more: EngineEvent[] = await runAll(e, g, big());
    const end = last(more) as FailedEvent;
    assert.equal(end.type, 'failed');
    assert.equal(end.status, 429);
    assert.match(end.error.error.message, /tpm 250/);
    assert.equal(up.requests.length, 8);
  });
});
