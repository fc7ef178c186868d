/**
 * Key pools as users see them (issue 15): the openai SDK as the client,
 * `/status`, `/metrics`, `logs --stats` and `test-endpoints` showing one row
 * per lane by the key's fingerprint, and never the key.
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { cliEnv, collect, runCli, startCli, waitForStdout } from '../helpers/cli.js';
import { completionBody, json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { KEYS, perKey } from '../helpers/pools.js';

let up: FakeUpstream;
let serve: ChildProcessWithoutNullStreams;
let origin = '';
let dir = '';
let logDir = '';
let serveStderr = '';

const leaksAKey = (text: string): boolean => Object.values(KEYS).some((key) => text.includes(key) || text.includes(key.slice(-8)));

before(async () => {
  up = await startFakeUpstream((_n, req) =>
    req.headers.authorization === `Bearer ${KEYS.K2}` ? json({ error: { message: `Invalid key ${KEYS.K2}` } }, 401) : json(completionBody('ok')),
  );
  dir = await mkdtemp(path.join(tmpdir(), 'failproxy-pool-'));
  logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-pool-logs-'));
  const pool = { name: 'or', type: 'openrouter', baseurl: up.baseurl, model: 'm', timeout: 5, apikey: ['${K1}', '${K2}', '${K3}', '${UNSET_POOL_KEY}'] };
  await writeFile(path.join(dir, 'pool.json'), JSON.stringify({ endpoints: [pool] }));
  serve = startCli(['serve', '--port', '0', '--profiles', dir, '--log-dir', logDir], { env: cliEnv(KEYS) });
  serve.stderr.on('data', (c: Buffer) => (serveStderr += c.toString()));
  [, origin = ''] = await waitForStdout(serve, /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/);
});

after(async () => {
  if (serve.exitCode === null) serve.kill('SIGKILL');
  await up.close();
  for (const d of [dir, logDir]) if (d) await rm(d, { recursive: true, force: true });
});

describe('key pools through the server', () => {
  it('serves through the pool, keeps one x-session-id on one lane, and shows lanes by fingerprint only', async () => {
    const client = new OpenAI({ baseURL: `${origin}/v1`, apiKey: 'unused', maxRetries: 0 });
    for (let i = 0; i < 6; i++) {
      const answer = await client.chat.completions.create({ model: 'pool', messages: [{ role: 'user', content: `question ${i}` }] });
      assert.equal(answer.choices[0]?.message.content, 'ok');
    }
    assert.equal(perKey(up)[KEYS.K2], 1, 'the 401 key was tried once, then rested');

    const sticky = new OpenAI({ baseURL: `${origin}/v1`, apiKey: 'unused', maxRetries: 0, defaultHeaders: { 'x-session-id': 'agent-session-1' } });
    const lanes = new Set<string | null>();
    for (let i = 0; i < 5; i++) {
      const { response } = await sticky.chat.completions.create({ model: 'pool', messages: [{ role: 'user', content: `turn ${i}` }] }).withResponse();
      lanes.add(response.headers.get('x-failproxy-endpoint'));
    }
    assert.equal(lanes.size, 1, `one lane for one session: ${[...lanes].join(', ')}`);
    assert.match([...lanes][0] ?? '', /^or@or-key-[0-9a-f]{4}$/);

    const statusText = await (await fetch(`${origin}/status`)).text();
    assert.ok(!leaksAKey(statusText), 'no key in /status');
    const status = JSON.parse(statusText) as { groups: Array<{ endpoints: Array<Record<string, unknown>> }> };
    const rows = status.groups[0]!.endpoints;
    assert.equal(rows.length, 3);
    assert.match(serveStderr, /UNSET_POOL_KEY/, 'the lane without its key is skipped with a warning');
    assert.ok(rows.every((r) => r['pool'] === 'or' && /^or-key-[0-9a-f]{4}$/.test(String(r['lane'])) && r['in_flight'] === 0));
    assert.deepEqual(
      rows.map((r) => r['state']),
      ['ok', 'cooling', 'ok'],
    );

    const metrics = await (await fetch(`${origin}/metrics`)).text();
    assert.ok(!leaksAKey(metrics), 'no key in /metrics');
    assert.match(metrics, /failproxy_lane_in_flight\{group="pool",endpoint="or@or-key-[0-9a-f]{4}",pool="or",lane="or-key-[0-9a-f]{4}"\} 0/);
    assert.match(metrics, /failproxy_attempts_total\{group="pool",endpoint="or@or-key-[0-9a-f]{4}",result="auth"\} 1/);
  });

  it('logs --stats has one row per lane', async () => {
    serve.kill('SIGTERM');
    await collect(serve);
    assert.ok(!leaksAKey(serveStderr), 'no key in what serve printed');
    const run = await runCli(['logs', '--log-dir', logDir, '--stats', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!leaksAKey(run.stdout + run.stderr));
    const endpoints = JSON.stringify(JSON.parse(run.stdout)).match(/or@or-key-[0-9a-f]{4}/g) ?? [];
    assert.equal(new Set(endpoints).size, 3, run.stdout);
  });

  it('test-endpoints probes one row per lane and lists an unset key as skipped', async () => {
    const run = await runCli(['test-endpoints', '--profiles', dir, '--json'], { env: cliEnv(KEYS) });
    assert.ok(!leaksAKey(run.stdout + run.stderr), 'no key in the output');
    const rows = JSON.parse(run.stdout) as Array<{ endpoint: string; result: string }>;
    assert.equal(rows.length, 4);
    assert.deepEqual(rows.filter((r) => r.result === 'ok').length, 2);
    assert.ok(rows.some((r) => r.result === 'auth' && /^or@or-key-/.test(r.endpoint)));
    assert.ok(rows.some((r) => r.endpoint === 'or@key4-unset' && r.result === 'skipped'), JSON.stringify(rows));
    assert.match(run.stderr, /UNSET_POOL_KEY/);
  });
});
