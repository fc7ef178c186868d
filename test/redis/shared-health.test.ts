/**
 * `serve --redis`: two real instances share endpoint health through a real
 * redis-server on loopback (skipped, with a message, when redis-server is
 * not installed). The fake upstream counts what reaches each endpoint.
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { cliEnv, startCli, waitForStdout } from '../helpers/cli.js';
import { completionBody, json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { redisMissing, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

interface Instance {
  name: string;
  origin: string;
  child: ChildProcessWithoutNullStreams;
  stderr(): string;
}

const skip = redisMissing();
if (skip) process.stderr.write(`SKIP test/redis: ${skip}\n`);

/** Each group: a misbehaving endpoint (its own model, so its own health) in front of a good one. */
const GROUPS: Record<string, { bad?: string; cooldown?: { failures: number; seconds: number } }> = {
  healthy: {},
  triple: { bad: 'flaky-triple' },
  mixed: { bad: 'flaky-mixed' },
  auth: { bad: 'auth-dead' },
  probe: { bad: 'probe', cooldown: { failures: 1, seconds: 1 } },
  churn: { bad: 'flaky-churn', cooldown: { failures: 1, seconds: 0.05 } },
  outage: { bad: 'flaky-outage' },
  later: { bad: 'flaky-later' },
};

/** The first key of the `lanes` pool, rejected by the upstream. */
const REVOKED_LANE_KEY = 'sk-lane-revoked-0123456789';

describe('serve --redis: shared endpoint health', { skip: skip ?? false }, () => {
  let redis: RedisServer;
  let upstream: FakeUpstream;
  let dir: string;
  const instances: Instance[] = [];
  let a: Instance;
  let b: Instance;

  before(async () => {
    redis = await startRedisServer();
    upstream = await startFakeUpstream((n, req) => {
      const model = String(req.body['model']);
      if (req.headers.authorization === `Bearer ${REVOKED_LANE_KEY}`) return json({ error: { message: 'key revoked' } }, 401);
      if (model.startsWith('auth-')) return json({ error: { message: 'invalid api key' } }, 401);
      // The probe is answered slowly, with a 401 that reopens the cooldown for 300 s (so later requests cannot probe again).
      if (model === 'probe') {
        return hits('probe') === 1
          ? json({ error: { message: 'upstream exploded' } }, 500)
          : { kind: 'json', status: 401, body: { error: { message: 'key revoked' } }, delayMs: 300 };
      }
      if (model !== 'good') return json({ error: { message: 'upstream exploded' } }, 500);
      return json(completionBody('ok'));
    });
    dir = await mkdtemp(path.join(tmpdir(), 'failproxy-redis-'));
    await writeProfiles(path.join(dir, 'profiles'), upstream.baseurl);
    a = await startInstance('A');
    b = await startInstance('B');
    await Promise.all(
      [a, b].map((i) =>
        waitFor(async () => (await status(i)).health_store.instances === 2 || null, 'both instances live', 6000),
      ),
    );
  });

  after(async () => {
    await Promise.all(instances.map(stopInstance));
    await upstream?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function startInstance(name: string): Promise<Instance> {
    const child = startCli(
      [
        'serve',
        '--profiles',
        path.join(dir, 'profiles'),
        '--port',
        '0',
        '--log-dir',
        path.join(dir, `logs-${name}`),
        '--redis',
        redis.url,
        '--redis-prefix',
        'fp-test:',
      ],
      { env: cliEnv() },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const match = await waitForStdout(child, /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/);
    child.stdout.resume();
    const instance = { name, origin: match[1]!, child, stderr: () => stderr };
    instances.push(instance);
    return instance;
  }

  function hits(model: string): number {
    return upstream.requests.filter((r) => r.body['model'] === model).length;
  }

  it('shows in /status that the state is shared, and how many instances are live', async () => {
    for (const instance of [a, b]) {
      const body = await status(instance);
      assert.deepEqual(body.health_store, { store: 'redis', shared: true, connected: true, instances: 2 });
    }
  });

  it('a healthy request issues no Redis command', async () => {
    const before = await commandStats(redis.url);
    for (let i = 0; i < 10; i++) {
      for (const instance of [a, b]) assert.equal((await chat(instance, 'healthy')).status, 200);
    }
    const afterStats = await commandStats(redis.url);
    // Heartbeats (SET + SCAN every 2 s) and our own INFO are the only expected traffic.
    const changed = Object.keys(afterStats).filter(
      (cmd) => !['set', 'scan', 'info'].includes(cmd) && afterStats[cmd] !== (before[cmd] ?? 0),
    );
    assert.deepEqual(changed, [], `commands issued during healthy requests: ${changed.join(', ')}`);
    // The check can see a health update: a failure is one script call.
    assert.equal((await chat(a, 'mixed')).status, 200);
    await waitFor(
      async () => ((await commandStats(redis.url))['evalsha'] ?? 0) > (before['evalsha'] ?? 0) || null,
      'a failure runs a script',
    );
  });

  it('an endpoint that failed three times through A is skipped by B on its next request', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await chat(a, 'triple')).status, 200);
    assert.equal(hits('flaky-triple'), 3);
    await waitFor(async () => (await endpointState(b, 'triple')).state === 'cooling' || null, 'B sees the cooldown');
    const res = await chat(b, 'triple');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-failproxy-attempts'), '1');
    assert.equal(hits('flaky-triple'), 3);
  });

  it('consecutive failures are counted across instances', async () => {
    // One failure already came through A in the commandstats test.
    assert.equal(hits('flaky-mixed'), 1);
    await chat(b, 'mixed');
    await waitFor(async () => (await endpointState(a, 'mixed')).consecutive_failures === 2 || null, 'A sees the count');
    await chat(a, 'mixed');
    assert.equal(hits('flaky-mixed'), 3);
    await waitFor(async () => (await endpointState(b, 'mixed')).state === 'cooling' || null, 'B sees the cooldown');
    await chat(b, 'mixed');
    assert.equal(hits('flaky-mixed'), 3);
  });

  it('a 401 on A cools the endpoint on B at once', async () => {
    assert.equal((await chat(a, 'auth')).status, 200);
    assert.equal(hits('auth-dead'), 1);
    const state = await waitFor(async () => {
      const s = await endpointState(b, 'auth');
      return s.state === 'cooling' ? s : null;
    }, 'B sees the auth cooldown');
    assert.equal(state.reason, 'auth');
    assert.equal((await chat(b, 'auth')).headers.get('x-failproxy-attempts'), '1');
    assert.equal(hits('auth-dead'), 1);
  });

  it('key-pool lanes are shared one by one: a lane cooled on A is skipped by B, its sibling serves', async () => {
    assert.equal((await chat(a, 'lanes')).status, 200);
    const revokedHits = (): number => upstream.requests.filter((r) => r.headers.authorization === `Bearer ${REVOKED_LANE_KEY}`).length;
    assert.equal(revokedHits(), 1);
    const lanes = await waitFor(async () => {
      const endpoints = (await status(b)).groups.find((g) => g.name === 'lanes')?.endpoints ?? [];
      return endpoints[0]?.state === 'cooling' ? endpoints : null;
    }, 'B sees the lane cooldown');
    assert.deepEqual(
      lanes.map((e) => [e.state, e.reason]),
      [
        ['cooling', 'auth'],
        ['ok', null],
      ],
    );
    assert.equal((await chat(b, 'lanes')).headers.get('x-failproxy-attempts'), '1');
    assert.equal(revokedHits(), 1);
  });

  it('after the cooldown, exactly one probe reaches the upstream across both instances', async () => {
    assert.equal((await chat(a, 'probe')).status, 200);
    assert.equal(hits('probe'), 1);
    const until = await waitFor(async () => {
      const s = await endpointState(b, 'probe');
      return s.state === 'cooling' && s.cooling_until ? Date.parse(s.cooling_until) : null;
    }, 'B sees the cooldown');
    await sleep(Math.max(0, until - Date.now() + 20));
    const burst = async (): Promise<void> => {
      const answers = await Promise.all([a, b, a, b, a, b, a, b].map((i) => chat(i, 'probe')));
      for (const r of answers) assert.equal(r.status, 200);
    };
    // Both instances race for the half-open probe; the winner's next request sends it.
    const deadline = Date.now() + 5000;
    while (hits('probe') < 2 && Date.now() < deadline) await burst();
    assert.equal(hits('probe'), 2, 'the probe went out');
    // While it is answered slowly (300 ms), and after it reopened the cooldown, nobody else probes.
    for (let i = 0; i < 4; i++) await burst();
    for (const instance of [a, b]) {
      await waitFor(
        async () => (await endpointState(instance, 'probe')).reason === 'auth' || null,
        `${instance.name} sees the reopened cooldown`,
      );
    }
    await burst();
    assert.equal(hits('probe'), 2, 'exactly one probe in total');
  });

  it('keeps answering while Redis is down, and shares again once it is back', async () => {
    const latencies: number[] = [];
    const failures: string[] = [];
    let running = true;
    const load = async (instance: Instance, group: string): Promise<void> => {
      while (running) {
        const started = performance.now();
        const res = await chat(instance, group).catch((e: Error) => ({ status: 0, statusText: e.message }));
        latencies.push(performance.now() - started);
        if (res.status !== 200) failures.push(`${instance.name} ${group}: ${res.status}`);
      }
    };
    // Keep health changing (a 50 ms cooldown that keeps failing) and the healthy path busy.
    const loops = [load(a, 'churn'), load(b, 'churn'), load(a, 'healthy'), load(b, 'healthy')];
    await sleep(300);
    await redis.kill();
    await sleep(700);
    // Down: each instance cools on its own view.
    for (let i = 0; i < 3; i++) await chat(a, 'outage');
    assert.equal(hits('flaky-outage'), 3);
    await chat(a, 'outage');
    assert.equal(hits('flaky-outage'), 3, 'A still cools locally');
    for (const instance of [a, b]) assert.equal((await status(instance)).health_store.connected, false);
    running = false;
    await Promise.all(loops);
    assert.deepEqual(failures, []);
    assert.ok(latencies.length > 20, `only ${latencies.length} requests`);
    latencies.sort((x, y) => x - y);
    assert.ok(latencies[latencies.length - 1]! < 1000, `slowest request ${latencies.at(-1)} ms`);

    await redis.restart();
    for (const instance of [a, b]) {
      await waitFor(
        async () => (await status(instance)).health_store.connected || null,
        `${instance.name} reconnects`,
        8000,
      );
    }
    // A's cooldown from the outage reached Redis, and B, on resynchronisation.
    await waitFor(
      async () => (await endpointState(b, 'outage')).state === 'cooling' || null,
      'B learns the outage cooldown',
    );
    for (let i = 0; i < 3; i++) await chat(a, 'later');
    await waitFor(async () => (await endpointState(b, 'later')).state === 'cooling' || null, 'B sees the new cooldown');
    await chat(b, 'later');
    assert.equal(hits('flaky-later'), 3);

    for (const instance of [a, b]) {
      const log = instance.stderr();
      assert.equal(log.match(/redis unavailable/g)?.length, 1, `${instance.name} logs the outage once:\n${log}`);
      assert.equal(log.match(/redis back/g)?.length, 1, `${instance.name} logs the return once:\n${log}`);
    }
  });
});

// ---------------------------------------------------------------------------

async function writeProfiles(dir: string, baseurl: string): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  const endpoint = (name: string, model: string) => ({
    name,
    baseurl,
    apikey: 'sk-test-shared-0123456789',
    model,
    timeout: 5,
  });
  for (const [group, spec] of Object.entries(GROUPS)) {
    const endpoints = [...(spec.bad ? [endpoint('bad', spec.bad)] : []), endpoint('good', 'good')];
    const content = spec.cooldown ? { endpoints, cooldown: spec.cooldown } : { endpoints };
    await writeFile(path.join(dir, `${group}.json`), JSON.stringify(content));
  }
  const pool = { name: 'pool', baseurl, model: 'good', timeout: 5, keys: 'fill_first', apikey: [REVOKED_LANE_KEY, 'sk-lane-fine-0123456789'] };
  await writeFile(path.join(dir, 'lanes.json'), JSON.stringify({ endpoints: [pool] }));
}

function chat(instance: Instance, group: string): Promise<Response> {
  return fetch(`${instance.origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: group, messages: [{ role: 'user', content: 'hi' }] }),
  }).then(async (res) => {
    await res.arrayBuffer();
    return res;
  });
}

interface StatusBody {
  groups: Array<{
    name: string;
    endpoints: Array<{
      name: string;
      state: string;
      cooling_until: string | null;
      reason: string | null;
      consecutive_failures: number;
    }>;
  }>;
  health_store: { store: string; shared: boolean; connected: boolean | null; instances: number | null };
}

async function status(instance: Instance): Promise<StatusBody> {
  const res = await fetch(`${instance.origin}/status`);
  return (await res.json()) as StatusBody;
}

async function endpointState(
  instance: Instance,
  group: string,
): Promise<StatusBody['groups'][number]['endpoints'][number]> {
  const body = await status(instance);
  const endpoint = body.groups.find((g) => g.name === group)?.endpoints.find((e) => e.name === 'bad');
  assert.ok(endpoint, `${group}/bad in /status`);
  return endpoint;
}

/** Poll until `check` returns something other than null (fails after `timeoutMs`). */
async function waitFor<T>(check: () => Promise<T | null>, what: string, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

/** Calls per command from INFO commandstats. */
async function commandStats(url: string): Promise<Record<string, number>> {
  const client = createClient({ url });
  await client.connect();
  try {
    const info = await client.info('commandstats');
    const stats: Record<string, number> = {};
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats[m[1]!] = Number(m[2]);
    return stats;
  } finally {
    await client.disconnect();
  }
}

async function stopInstance(instance: Instance): Promise<void> {
  const { child } = instance;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
