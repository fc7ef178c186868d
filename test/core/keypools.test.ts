/**
 * Key pools (issue 15): one endpoint written with a list of keys serves as
 * one lane per key, each with its own health, against fake upstreams that
 * count requests per Authorization header.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateGroup } from '../../src/config/validate.js';
import type { FailoverEngine } from '../../src/core/engine.js';
import type { EngineEvent, Group } from '../../src/core/types.js';
import { completionBody, json } from '../helpers/fake-upstream.js';
import { chatRequest, last, runAll } from '../helpers/groups.js';
import { KEYS, perKey, poolGroup } from '../helpers/pools.js';
import { testRig } from '../helpers/rig.js';

const { upstream, engine } = testRig();

const starts = (events: EngineEvent[]): string[] => events.flatMap((e) => (e.type === 'attempt_start' ? [e.endpoint] : []));

async function serveMany(e: FailoverEngine, g: Group, n: number): Promise<EngineEvent[][]> {
  const all: EngineEvent[][] = [];
  for (let i = 0; i < n; i++) all.push(await runAll(e, g, chatRequest({ messages: [{ role: 'user', content: `question ${i}` }] })));
  return all;
}

describe('key pools', () => {
  it('expands a key list into lanes named by a fingerprint, never the key', () => {
    const g = poolGroup({
      endpoints: [{ name: 'or', type: 'openrouter', baseurl: 'http://127.0.0.1:9/v1', model: 'm', apikey: ['${K1}', '${K2}', '${K3}'] }],
    });
    assert.equal(g.endpoints.length, 3);
    for (const lane of g.endpoints) {
      assert.match(lane.name, /^or@or-key-[0-9a-f]{4}$/);
      assert.equal(lane.pool, 'or');
      for (const key of Object.values(KEYS)) assert.ok(!lane.name.includes(key.slice(-4)), 'no part of a key in the name');
    }
    assert.deepEqual(
      g.endpoints.map((e) => e.apikey),
      Object.values(KEYS),
    );
  });

  it('skips a lane whose ${VAR} is unset, with a warning, and keeps the others', () => {
    const { group, problems } = validateGroup(
      { endpoints: [{ name: 'or', baseurl: 'http://127.0.0.1:9/v1', model: 'm', apikey: ['${K1}', '${MISSING_KEY}', '${K3}'] }] },
      'pool',
      'pool.yaml',
      KEYS,
    );
    assert.ok(group);
    assert.equal(group.endpoints.length, 2);
    assert.equal(group.skipped.length, 1);
    assert.match(group.skipped[0]!.reason, /MISSING_KEY/);
    assert.ok(problems.some((p) => p.severity === 'warning' && /MISSING_KEY/.test(p.message) && p.path === 'endpoints[0].apikey[1]'));
  });

  it('reports wrong pool options with their paths, never quoting a key', () => {
    const { group, problems } = validateGroup(
      {
        strategy: 'fastest',
        sticky: { ttl: -1 },
        endpoints: [
          { name: 'a', baseurl: 'http://127.0.0.1:9/v1', model: 'm', apikey: ['sk-literal-secret-key', 42], keys: 'rotate', rpm: 0, drop: 'temperature' },
        ],
      },
      'pool',
      'pool.yaml',
      KEYS,
    );
    assert.equal(group, null);
    const paths = problems.filter((p) => p.severity === 'error').map((p) => p.path);
    assert.deepEqual(paths.sort(), ['endpoints', 'endpoints[0].apikey[1]', 'endpoints[0].keys', 'endpoints[0].rpm', 'sticky.ttl', 'strategy'].sort());
    assert.ok(!JSON.stringify(problems).includes('sk-literal-secret-key'));
  });

  it('round robin spreads 300 requests evenly over 3 keys', async () => {
    const up = await upstream(json(completionBody('ok')));
    const g = poolGroup({ endpoints: [{ name: 'or', baseurl: up.baseurl, model: 'm', apikey: ['${K1}', '${K2}', '${K3}'] }] });
    const e = engine();
    const runs = await serveMany(e, g, 300);
    assert.ok(runs.every((r) => last(r).type === 'done'));
    const counts = perKey(up);
    for (const key of Object.values(KEYS)) {
      assert.ok(Math.abs((counts[key] ?? 0) - 100) <= 5, `key used ${counts[key]} times, expected 100 ± 5 %`);
    }
  });

  it('fill_first uses the first key until it fails', async () => {
    const up = await upstream(json(completionBody('ok')));
    const g = poolGroup({ endpoints: [{ name: 'or', baseurl: up.baseurl, model: 'm', keys: 'fill_first', apikey: ['${K1}', '${K2}'] }] });
    await serveMany(engine(), g, 10);
    assert.deepEqual(perKey(up), { [KEYS.K1]: 10 });
  });

  it('a 429 on one key sends the request to a sibling and rests only that key for Retry-After', async () => {
    const up = await upstream((_n, req) =>
      req.headers.authorization === `Bearer ${KEYS.K1}` ? json({ error: { message: 'slow down' } }, 429, { 'retry-after': '30' }) : json(completionBody('ok')),
    );
    const other = await upstream(json(completionBody('from the next endpoint')));
    const g = poolGroup({
      endpoints: [
        { name: 'or', baseurl: up.baseurl, model: 'm', keys: 'fill_first', apikey: ['${K1}', '${K2}', '${K3}'] },
        { name: 'next', baseurl: other.baseurl, model: 'm', apikey: 'sk-next' },
      ],
    });
    const e = engine();
    const first = await runAll(e, g, chatRequest());
    assert.equal(last(first).type, 'done');
    assert.deepEqual(starts(first), [g.endpoints[0]!.name, g.endpoints[1]!.name], 'the sibling lane, not the next endpoint');
    const snapshot = e.health.snapshot(g.endpoints[0]!);
    assert.equal(snapshot.state, 'cooling');
    assert.ok(snapshot.until !== null && snapshot.until - Date.now() > 25_000, 'rests for Retry-After');
    assert.equal(e.health.snapshot(g.endpoints[1]!).state, 'ok');
    assert.equal(e.health.snapshot(g.endpoints[2]!).state, 'ok');
    await serveMany(e, g, 20);
    assert.equal(perKey(up)[KEYS.K1], 1, 'the rate-limited key rests');
    assert.equal(other.requests.length, 0, 'the siblings serve; the next endpoint is never needed');
  });

  it('a 401 key is cooled while the others serve', async () => {
    const up = await upstream((_n, req) =>
      req.headers.authorization === `Bearer ${KEYS.K2}` ? json({ error: { message: 'invalid key' } }, 401) : json(completionBody('ok')),
    );
    const g = poolGroup({ endpoints: [{ name: 'or', baseurl: up.baseurl, model: 'm', apikey: ['${K1}', '${K2}', '${K3}'] }] });
    const e = engine();
    const runs = await serveMany(e, g, 30);
    assert.ok(runs.every((r) => last(r).type === 'done'), JSON.stringify(runs.find((r) => last(r).type !== 'done')));
    const counts = perKey(up);
    assert.equal(counts[KEYS.K2], 1, 'the bad key is tried once, then cooled');
    assert.equal(e.health.snapshot(g.endpoints[1]!).reason, 'auth');
    assert.ok((counts[KEYS.K1] ?? 0) >= 12 && (counts[KEYS.K3] ?? 0) >= 12, `the others share the load: ${JSON.stringify(counts)}`);
  });

  it('random and least_inflight use every key', async () => {
    for (const keys of ['random', 'least_inflight']) {
      const up = await upstream(json(completionBody('ok')));
      const g = poolGroup({ endpoints: [{ name: 'or', baseurl: up.baseurl, model: 'm', keys, apikey: ['${K1}', '${K2}', '${K3}'] }] });
      await serveMany(engine(), g, 60);
      const counts = perKey(up);
      assert.equal(Object.keys(counts).length, 3, `${keys}: ${JSON.stringify(counts)}`);
    }
  });

  it('least_inflight sends concurrent requests to idle keys', async () => {
    const up = await upstream({ kind: 'json', body: completionBody('ok'), delayMs: 150 });
    const g = poolGroup({ endpoints: [{ name: 'or', baseurl: up.baseurl, model: 'm', keys: 'least_inflight', apikey: ['${K1}', '${K2}', '${K3}'] }] });
    const e = engine();
    await Promise.all([0, 1, 2].map((i) => runAll(e, g, chatRequest({ messages: [{ role: 'user', content: `q${i}` }] }))));
    assert.deepEqual(Object.values(perKey(up)), [1, 1, 1]);
  });
});
