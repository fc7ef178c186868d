/**
 * `failproxy serve` as users start it, on who may call it: the defaults
 * refuse foreign pages and host names and say which flag would allow them;
 * `--cors-origin` / `FAILPROXY_CORS_ORIGINS` and `--allowed-host` /
 * `FAILPROXY_ALLOWED_HOSTS` add exactly what they name; `'*'` without a key
 * warns at start-up; bad values are usage errors before anything starts.
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { cliEnv, collect, runCli, startCli, waitForStdout } from '../helpers/cli.js';
import { completionBody, json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { send } from '../helpers/http.js';

const CHAT = '{"model":"up","messages":[{"role":"user","content":"hi"}]}';

let upstream: FakeUpstream;
let profiles: string;
const children: ChildProcessWithoutNullStreams[] = [];

before(async () => {
  upstream = await startFakeUpstream(json(completionBody('Hello from upstream')));
  profiles = await mkdtemp(path.join(tmpdir(), 'failproxy-security-profiles-'));
  await writeFile(
    path.join(profiles, 'up.yaml'),
    `- name: up\n  baseurl: ${upstream.baseurl}\n  apikey: ""\n  model: m\n`,
  );
});

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await upstream.close();
});

interface Served {
  child: ChildProcessWithoutNullStreams;
  origin: string;
  port: number;
  logDir: string;
  stderr: () => string;
}

async function serve(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-security-logs-'));
  const child = startCli(['serve', '--port', '0', '--profiles', profiles, '--log-dir', logDir, ...args], {
    env: cliEnv(env),
  });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [, origin] = await waitForStdout(child, /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/);
  return { child, origin: origin!, port: Number(new URL(origin!).port), logDir, stderr: () => stderr };
}

async function stop(served: Served): Promise<void> {
  served.child.kill('SIGTERM');
  const result = await collect(served.child);
  assert.equal(result.code, 0);
}

const post = (origin: string, headers: Record<string, string>) =>
  send(origin, 'POST', '/v1/chat/completions', { 'content-type': 'text/plain', ...headers }, CHAT);

describe('serve: who may call it', () => {
  it('by default refuses a foreign page and a foreign Host, says once which flag allows it, and logs it', async () => {
    const served = await serve([]);
    const before = upstream.requests.length;
    for (let i = 0; i < 2; i++) {
      const res = await post(served.origin, { origin: 'https://evil.example' });
      assert.equal(res.status, 403);
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      assert.match(res.text, /"code":"origin_not_allowed"/);
    }
    const rebound = await send(served.origin, 'GET', '/v1/models', { host: `attacker.example:${served.port}` });
    assert.equal(rebound.status, 403);
    assert.match(rebound.text, /"code":"host_not_allowed"/);
    assert.equal(upstream.requests.length, before, 'no upstream call');

    const local = await post(served.origin, {
      origin: `http://localhost:${served.port}`,
      host: `localhost:${served.port}`,
    });
    assert.equal(local.status, 200);
    assert.equal(local.headers['access-control-allow-origin'], `http://localhost:${served.port}`);
    assert.equal((await post(served.origin, {})).status, 200, 'no Origin: served');

    await sleep(50);
    const told = served
      .stderr()
      .match(/warning: refused POST \/v1\/chat\/completions from Origin "https:\/\/evil\.example".*--cors-origin/g);
    assert.equal(told?.length, 1, served.stderr());
    assert.match(served.stderr(), /refused GET \/v1\/models from Host "attacker\.example:\d+".*--allowed-host/);
    assert.doesNotMatch(served.stderr(), /--cors-origin '\*' without --api-key/);
    await stop(served);
    const lines = await readLog(served.logDir);
    assert.ok(lines.some((l) => l.event === 'server' && l.action === 'refused' && l.level === 'warn'));
  });

  it('--cors-origin (repeatable) and FAILPROXY_CORS_ORIGINS grant exactly the named origins', async () => {
    const served = await serve(['--cors-origin', 'https://app.example', '--cors-origin', 'https://two.example:8443'], {
      FAILPROXY_CORS_ORIGINS: 'https://env.example, https://env2.example',
    });
    for (const origin of [
      'https://app.example',
      'https://two.example:8443',
      'https://env.example',
      'https://env2.example',
    ]) {
      const res = await post(served.origin, { origin });
      assert.equal(res.status, 200, origin);
      assert.equal(res.headers['access-control-allow-origin'], origin);
      assert.equal(res.headers.vary, 'Origin');
    }
    for (const origin of ['https://evil.example', 'https://two.example', 'null']) {
      assert.equal((await post(served.origin, { origin })).status, 403, origin);
    }
    await stop(served);
  });

  it("--cors-origin '*' serves any page, and warns at start-up when no key is set", async () => {
    const open = await serve(['--cors-origin', '*']);
    const res = await post(open.origin, { origin: 'https://evil.example' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.match(open.stderr(), /warning: --cors-origin '\*' without --api-key: any web page/);
    await stop(open);

    const locked = await serve(['--cors-origin', '*', '--api-key', 'client-key-1']);
    assert.doesNotMatch(locked.stderr(), /--cors-origin '\*' without --api-key/);
    assert.equal((await post(locked.origin, { origin: 'https://evil.example' })).status, 401);
    assert.equal(
      (await post(locked.origin, { origin: 'https://evil.example', 'x-api-key': 'client-key-1' })).status,
      200,
    );
    await stop(locked);
  });

  it('--allowed-host and FAILPROXY_ALLOWED_HOSTS add host names, e.g. behind a reverse proxy', async () => {
    const served = await serve(['--allowed-host', 'proxy.example'], { FAILPROXY_ALLOWED_HOSTS: 'box.lan' });
    for (const host of ['proxy.example', `proxy.example:${served.port}`, 'box.lan', `127.0.0.1:${served.port}`]) {
      assert.equal((await send(served.origin, 'GET', '/v1/models', { host })).status, 200, host);
    }
    assert.equal((await send(served.origin, 'GET', '/v1/models', { host: 'other.example' })).status, 403);
    await stop(served);
  });

  it('bad values are usage errors (exit 2) before anything listens', async () => {
    for (const [flag, value, message] of [
      ['--cors-origin', 'null', /--cors-origin null would let any sandboxed page in/],
      ['--cors-origin', 'https://app.example/chat', /--cors-origin expects an origin like/],
      ['--cors-origin', 'app.example', /--cors-origin expects an origin like/],
      ['--allowed-host', 'http://proxy.example', /--allowed-host expects a host name/],
    ] as const) {
      const result = await runCli(['serve', '--port', '0', '--profiles', profiles, flag, value]);
      assert.equal(result.code, 2, `${flag} ${value}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stdout, /listening/);
    }
  });
});

async function readLog(dir: string): Promise<Array<Record<string, unknown>>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const file of await readdir(dir)) {
    for (const line of (await readFile(path.join(dir, file), 'utf8')).split('\n')) {
      if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  }
  return lines;
}
