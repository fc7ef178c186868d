/**
 * `failproxy test-endpoints` as the built CLI (run `npm run build` first)
 * against fake upstreams on loopback: one group with every kind of endpoint,
 * one with none that works.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ProbeRow } from '../../src/probe/probe.js';
import {
  completionBody,
  json,
  sse,
  startFakeUpstream,
  wordStream,
  type FakeUpstream,
} from '../helpers/fake-upstream.js';
import { refusedBaseurl } from '../helpers/groups.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'failproxy.js');
const built = existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'));
const KEY = 'sk-probe-secret-0123456789';
const MISSING = 'FAILPROXY_TEST_UNSET_KEY';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', PROBE_TEST_KEY: KEY };
  delete env[MISSING];
  delete env.FORCE_COLOR;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('test-endpoints (built CLI)', { skip: built ? false : 'run `npm run build` first' }, () => {
  const upstreams: FakeUpstream[] = [];
  let dir = '';

  before(async () => {
    const start = async (...args: Parameters<typeof startFakeUpstream>): Promise<FakeUpstream> => {
      const u = await startFakeUpstream(...args);
      upstreams.push(u);
      return u;
    };
    const ok = await start(json(completionBody('OK')));
    const auth = await start(json({ error: { message: 'Invalid API key provided' } }, 401));
    const limited = await start(json({ error: { message: 'Rate limit exceeded' } }, 429, { 'retry-after': '7' }));
    const broken = await start(json({ error: { message: 'upstream exploded' } }, 500));
    const hang = await start({ kind: 'hang' });
    const streaming = await start(sse(wordStream(['O', 'K']), { gapMs: 5 }));
    const refused = await refusedBaseurl();

    dir = await mkdtemp(path.join(tmpdir(), 'failproxy-probe-'));
    const ep = (name: string, baseurl: string, extra: Record<string, unknown> = {}) => ({
      name,
      baseurl,
      apikey: '${PROBE_TEST_KEY}',
      model: `model-${name}`,
      timeout: 5,
      stream: false,
      ...extra,
    });
    await writeFile(
      path.join(dir, 'mixed.json'),
      JSON.stringify({
        endpoints: [
          ep('ok', ok.baseurl),
          ep('auth', auth.baseurl),
          ep('limited', limited.baseurl),
          ep('broken', broken.baseurl),
          ep('hang', hang.baseurl, { timeout: 1 }),
          ep('refused', refused),
          ep('streaming', streaming.baseurl, { stream: true }),
          ep('nokey', ok.baseurl, { apikey: `\${${MISSING}}` }),
        ],
      }),
    );
    await writeFile(
      path.join(dir, 'dead.json'),
      JSON.stringify([ep('dead-500', broken.baseurl), ep('dead-refused', refused)]),
    );
  });

  after(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('probes each endpoint and reports result, status and reason (--json, exit 0)', async () => {
    const run = await runCli(['test-endpoints', '--profiles', dir, '-g', 'mixed', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const rows = JSON.parse(run.stdout) as ProbeRow[];
    const byName = new Map(rows.map((r) => [r.endpoint, r]));
    // Stable order: usable endpoints in file order, then the skipped one.
    assert.deepEqual(
      rows.map((r) => r.endpoint),
      ['ok', 'auth', 'limited', 'broken', 'hang', 'refused', 'streaming', 'nokey'],
    );
    assert.ok(rows.every((r) => r.group === 'mixed'));

    const ok = byName.get('ok')!;
    assert.deepEqual([ok.result, ok.status, ok.reason, ok.model], ['ok', null, '', 'model-ok']);
    assert.equal(typeof ok.latency_ms, 'number');
    assert.equal(ok.ttft_ms, null, 'a non-streaming endpoint has no separate first-token time');

    const auth = byName.get('auth')!;
    assert.deepEqual([auth.result, auth.status], ['auth', 401]);
    assert.match(auth.reason, /Invalid API key provided/);

    const limited = byName.get('limited')!;
    assert.deepEqual([limited.result, limited.status], ['rate_limit', 429]);
    assert.match(limited.reason, /Rate limit exceeded/);

    const broken = byName.get('broken')!;
    assert.deepEqual([broken.result, broken.status], ['server', 500]);
    assert.match(broken.reason, /upstream exploded/);

    const hang = byName.get('hang')!;
    assert.deepEqual([hang.result, hang.status], ['timeout', null]);
    assert.ok(hang.latency_ms !== null && hang.latency_ms >= 900 && hang.latency_ms < 4000, String(hang.latency_ms));

    const refused = byName.get('refused')!;
    assert.deepEqual([refused.result, refused.status], ['network', null]);
    assert.notEqual(refused.reason, '');

    const streaming = byName.get('streaming')!;
    assert.equal(streaming.result, 'ok');
    assert.equal(typeof streaming.ttft_ms, 'number');
    assert.ok(streaming.ttft_ms! <= streaming.latency_ms!);
    const sent = upstreams[5]!.requests.at(-1)!.body;
    assert.equal(sent.stream, true, 'a streaming endpoint is probed streaming');
    assert.equal(sent.max_tokens, 16);

    const nokey = byName.get('nokey')!;
    assert.deepEqual([nokey.result, nokey.status, nokey.reason], ['skipped', null, `missing env ${MISSING}`]);

    for (const r of rows) assert.equal(r.reason.length <= 100, true);
    assert.doesNotMatch(run.stdout, new RegExp(KEY));
    assert.doesNotMatch(run.stderr, new RegExp(KEY));
  });

  it('exits 1 when a tested group has no working endpoint, still printing every row', async () => {
    const run = await runCli(['test-endpoints', '--profiles', dir, '--json', '--concurrency', '3']);
    assert.equal(run.code, 1);
    const rows = JSON.parse(run.stdout) as ProbeRow[];
    assert.deepEqual(rows.map((r) => `${r.group}/${r.endpoint}`).slice(0, 3), [
      'dead/dead-500',
      'dead/dead-refused',
      'mixed/ok',
    ]);
    assert.equal(rows.length, 10);
    assert.match(run.stderr, /no working endpoint in group dead/);
    assert.equal(
      run.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('failproxy:')).length,
      1,
    );
  });

  it('prints a plain aligned table when piped', async () => {
    const run = await runCli(['test-endpoints', '--profiles', dir, '-g', 'dead', '-g', 'mixed']);
    assert.equal(run.code, 1);
    assert.equal(run.stdout.includes('\u001b['), false, 'no colours in a pipe');
    const lines = run.stdout.split('\n');
    const header = lines[0]!;
    assert.match(header, /^GROUP\s+ENDPOINT\s+MODEL\s+RESULT\s+LATENCY\s+TTFT\s+REASON$/);
    const resultCol = header.indexOf('RESULT');
    for (const [name, result] of [
      ['ok', 'ok'],
      ['auth', 'auth 401'],
      ['limited', 'rate_limit 429'],
      ['broken', 'server 500'],
      ['hang', 'timeout'],
      ['refused', 'network'],
      ['streaming', 'ok'],
      ['nokey', 'skipped'],
      ['dead-500', 'server 500'],
    ] as const) {
      const line = lines.find((l) => l.split(/\s+/)[1] === name);
      assert.ok(line, `row for ${name}`);
      assert.equal(line.slice(resultCol).split(/\s{2,}/)[0], result, line);
    }
    assert.match(run.stdout, /missing env FAILPROXY_TEST_UNSET_KEY/);
    assert.match(run.stdout, /10 endpoints: 2 ok, 7 failed, 1 skipped/);
  });

  it('an unknown group is a usage error (exit 2) naming the groups', async () => {
    const run = await runCli(['test-endpoints', '--profiles', dir, '-g', 'nope', '--json']);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /unknown group "nope"; available groups: dead, mixed/);
  });
});
