/**
 * `Retry-After` on the all-failed answer (SPEC §3.8): the AI SDK and
 * LangChain ignore `x-should-retry: false` and send the request through the
 * whole group again, so FailProxy tells them when an endpoint will be usable
 * again — the earliest end of the group's cooldowns — and says nothing when
 * it does not know.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthTracker } from '../../src/core/health.js';
import type { EngineEvent, Group } from '../../src/core/types.js';
import { json, type Behaviour } from '../helpers/fake-upstream.js';
import { chatRequest, endpoint, group, last, runAll } from '../helpers/groups.js';
import { testRig } from '../helpers/rig.js';

const { upstream, engine } = testRig();

async function failedHeaders(g: (urls: string[]) => Group, behaviours: Behaviour[], clock = { now: 1_000_000 }): Promise<Record<string, string>> {
  const urls = await Promise.all(behaviours.map(async (b) => (await upstream(b)).baseurl));
  const end: EngineEvent = last(await runAll(engine({ health: new HealthTracker(() => clock.now) }), g(urls), chatRequest()));
  if (end.type !== 'failed') throw new Error(`expected failed, got ${end.type}`);
  assert.equal(end.headers['x-should-retry'], 'false');
  return end.headers;
}

const down = json({ detail: 'No instances available' }, 503);

describe('Retry-After on the all-failed answer', () => {
  it('every endpoint cooling: the earliest cooldown end, in seconds and in ms', async () => {
    const headers = await failedHeaders(
      ([a, b]) => group('g', [endpoint(a!, { name: 'auth' }), endpoint(b!, { name: 'down' })], { cooldown: { failures: 1, seconds: 20 } }),
      [json({ error: { message: 'bad key' } }, 401), down],
    );
    // auth cools for 300 s, the 503 for the group's 20 s: a retry can work in 20 s.
    assert.equal(headers['retry-after'], '20');
    assert.equal(headers['retry-after-ms'], '20000');
  });

  it('a cooldown that is not a whole number of seconds is rounded up for Retry-After', async () => {
    const headers = await failedHeaders(([a]) => group('g', [endpoint(a!)], { cooldown: { failures: 1, seconds: 2.5 } }), [down]);
    assert.equal(headers['retry-after'], '3');
    assert.equal(headers['retry-after-ms'], '2500');
  });

  it('an endpoint that is not cooling (first 503 of three, or a 400): no promise, no header', async () => {
    const first = await failedHeaders(([a, b]) => group('g', [endpoint(a!, { name: 'auth' }), endpoint(b!, { name: 'down' })]), [json({ error: { message: 'bad key' } }, 401), down]);
    assert.equal(first['retry-after'], undefined);
    assert.equal(first['retry-after-ms'], undefined);
    const bad = await failedHeaders(([a]) => group('g', [endpoint(a!)]), [json({ error: { message: 'context too long' } }, 400)]);
    assert.equal(bad['retry-after'], undefined);
  });

  it('all rate-limited: the smallest upstream Retry-After, as before, now also in ms', async () => {
    const headers = await failedHeaders(
      ([a, b]) => group('g', [endpoint(a!, { name: 'a' }), endpoint(b!, { name: 'b' })]),
      [json({ error: { message: 'a' } }, 429, { 'retry-after': '20' }), json({ error: { message: 'b' } }, 429, { 'retry-after-ms': '2500' })],
    );
    assert.equal(headers['retry-after'], '3');
    assert.equal(headers['retry-after-ms'], '2500');
  });
});
