/**
 * `failproxy top` as users run it, against `failproxy serve` spawned with a
 * key: piped it prints one JSON snapshot; on a terminal (util-linux `script`
 * makes the pty) it shows the groups and the chains, redraws when a new
 * request ends, and `q` quits with 0. A wrong key is exit 2, no server exit 1.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, ROOT, cliEnv, collect, runCli, startCli, waitForStdout } from '../helpers/cli.js';
import { completionBody, json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { refusedBaseurl } from '../helpers/groups.js';

const KEY = 'top-key-0123456';
const upstreams: FakeUpstream[] = [];
let server: ChildProcessWithoutNullStreams;
let origin = '';

function ptySkip(): string | false {
  if (process.platform !== 'linux') return 'needs util-linux `script` (Linux only)';
  const probe = spawnSync('script', ['-qfec', 'true', '/dev/null'], { stdio: 'ignore', timeout: 5000 });
  return probe.error || probe.status !== 0 ? 'util-linux `script` is not available to make a pseudo-terminal' : false;
}

before(async () => {
  const limited = await startFakeUpstream(json({ error: { message: 'Rate limit exceeded' } }, 429));
  const good = await startFakeUpstream(json(completionBody('hi')));
  upstreams.push(limited, good);
  const profiles = await mkdtemp(path.join(tmpdir(), 'failproxy-top-profiles-'));
  await writeFile(
    path.join(profiles, 'think-stream.yaml'),
    `- name: or-free\n  baseurl: ${limited.baseurl}\n  apikey: ""\n  model: m\n- name: chutes\n  baseurl: ${good.baseurl}\n  apikey: ""\n  model: m\n  price: { input: 1, output: 2 }\n`,
  );
  const logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-top-logs-'));
  server = startCli(['serve', '--port', '0', '--profiles', profiles, '--log-dir', logDir, '--api-key', KEY]);
  [, origin = ''] = await waitForStdout(server, /listening on (http:\/\/127\.0\.0\.1:\d+\/v1)/);
  await chat();
});

after(async () => {
  if (server.exitCode === null) server.kill('SIGTERM');
  await collect(server).catch(() => undefined);
  await Promise.all(upstreams.map((u) => u.close()));
});

async function chat(): Promise<void> {
  const res = await fetch(`${origin}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'think-stream', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200);
  await res.text();
}

// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string): string => s.replace(/\u001b\[[0-9;?]*[ -/]*[@-~]|\r/g, '');
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

describe('failproxy top', () => {
  it('piped: prints one JSON snapshot of the server (its URL as serve prints it is accepted)', async () => {
    const result = await runCli(['top', '--url', origin, '--api-key', KEY]);
    assert.equal(result.code, 0, result.stderr);
    const body = JSON.parse(result.stdout) as {
      url: string;
      status: { groups: Array<{ name: string; endpoints: Array<{ name: string; state: string }> }> };
      recent: Array<{ attempts: Array<{ endpoint: string; ok: boolean; class: string | null }> }>;
    };
    assert.equal(body.url, origin.replace(/\/v1$/, ''));
    assert.deepEqual(
      body.status.groups[0]?.endpoints.map((e) => [e.name, e.state]),
      [
        ['or-free', 'cooling'],
        ['chutes', 'ok'],
      ],
    );
    assert.deepEqual(
      body.recent[0]?.attempts.map((a) => [a.endpoint, a.ok, a.class]),
      [
        ['or-free', false, 'rate_limit'],
        ['chutes', true, null],
      ],
    );
  });

  it('a wrong key is a usage error (2); no server there is exit 1', async () => {
    const wrong = await runCli(['top', '--url', origin, '--api-key', 'nope']);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /needs an API key: pass --api-key/);
    const nobody = await runCli(['top', '--url', (await refusedBaseurl()).replace(/\/v1$/, '')]);
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /cannot reach FailProxy at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  });

  it(
    'on a terminal: the live view, redrawn when a request ends; q quits with 0',
    { skip: ptySkip(), timeout: 30_000 },
    async () => {
      const cmd = `stty rows 30 cols 120 2>/dev/null; exec ${[process.execPath, BIN, 'top', '--url', origin, '--api-key', KEY].map(quote).join(' ')}`;
      const env = cliEnv({ TERM: 'xterm-256color' });
      delete env.CI;
      const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      const waitFor = async (what: () => boolean, label: string): Promise<void> => {
        const deadline = Date.now() + 15_000;
        while (!what()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}; output:\n${stripAnsi(out)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      try {
        await waitFor(() => stripAnsi(out).includes('q quits'), 'the first frame');
        assert.doesNotMatch(stripAnsi(out), /connecting/, 'the first frame already shows the server');
        const first = stripAnsi(out);
        assert.match(first, /FailProxy top http:\/\/127\.0\.0\.1:\d+ · live/);
        assert.match(first, /or-free\s+cooling \d+s: rate_limit/);
        assert.match(first, /think-stream or-free ✗ rate_limit 429 → chutes ✓/);
        const chains = (): number => (stripAnsi(out).match(/2 answered/g) ?? []).length;
        await chat();
        await waitFor(() => chains() > 0, 'the redraw after a new request');
        child.stdin.write('q');
        assert.equal(await exited, 0, stripAnsi(out));
      } finally {
        child.kill('SIGKILL');
      }
    },
  );
});
