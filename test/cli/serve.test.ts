/**
 * `failproxy serve` as users start it: the README's commands on the shipped
 * profiles, graceful shutdown, profile reload, configuration errors.
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { completionBody, json, sse, startFakeUpstream, wordStream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { cliEnv, collect, runCli, startCli, waitForStdout } from '../helpers/cli.js';

const children: ChildProcessWithoutNullStreams[] = [];
const upstreams: FakeUpstream[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(upstreams.map((u) => u.close()));
});

async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

async function serve(
  args: string[],
): Promise<{ child: ChildProcessWithoutNullStreams; origin: string; logDir: string; stderr: () => string }> {
  const logDir = await tempDir('failproxy-serve-logs-');
  const child = startCli(['serve', '--port', '0', '--log-dir', logDir, ...args]);
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [, origin] = await waitForStdout(child, /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/);
  return { child, origin: origin!, logDir, stderr: () => stderr };
}

function fetchText(url: string, init?: RequestInit): Promise<{ status: number; text: string; headers: Headers }> {
  return fetch(url, init).then(async (r) => ({ status: r.status, text: await r.text(), headers: r.headers }));
}

const chat = (model: string, stream = false): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
});

describe('serve', () => {
  it('starts on the shipped profiles without any key and explains the missing keys', async () => {
    const { child, origin, stderr } = await serve([]);
    const health = await fetchText(`${origin}/health`);
    assert.equal(health.status, 200);
    const models = JSON.parse((await fetchText(`${origin}/v1/models`)).text) as { data: Array<{ id: string }> };
    assert.deepEqual(models.data.map((m) => m.id), ['free-pool', 'nothink-nostream', 'nothink-stream', 'think-nostream', 'think-stream']);
    const res = await fetchText(`${origin}/v1/chat/completions`, chat('think-stream', true));
    assert.equal(res.status, 502);
    assert.equal(res.headers.get('x-should-retry'), 'false');
    assert.match(res.text, /missing env OPENROUTER_API_KEY/);
    assert.match(res.text, /missing env CHUTES_API_KEY/);
    child.kill('SIGTERM');
    const result = await collect(child);
    assert.equal(result.code, 0);
    assert.match(stderr(), /CHUTES_API_KEY/);
  });

  it('SIGTERM lets an in-flight stream finish, refuses new connections, then exits 0', async () => {
    const slow = await startFakeUpstream(sse(wordStream(Array.from({ length: 10 }, (_, i) => `w${i} `)), { gapMs: 100 }));
    upstreams.push(slow);
    const profiles = await tempDir('failproxy-profiles-');
    await writeFile(path.join(profiles, 'slow.yaml'), `- name: slow\n  baseurl: ${slow.baseurl}\n  apikey: ""\n  model: m\n`);
    const { child, origin } = await serve(['--profiles', profiles]);

    const streamed = new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${origin}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        let signalled = false;
        res.on('data', (c: Buffer) => {
          text += c.toString();
          if (!signalled) {
            signalled = true;
            child.kill('SIGTERM');
          }
        });
        res.on('end', () => resolve(text));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'hi' }] }));
    });
    const text = await streamed;
    assert.match(text, /data: \[DONE\]\n\n$/);
    assert.match(text, /w9/);
    await assert.rejects(fetch(`${origin}/health`));
    const result = await collect(child);
    assert.equal(result.code, 0);
  });

  it('reloads a changed profile and keeps the last good version of a bad edit', async () => {
    const a = await startFakeUpstream(json(completionBody('from A')));
    const b = await startFakeUpstream(json(completionBody('from B')));
    upstreams.push(a, b);
    const profiles = await tempDir('failproxy-profiles-');
    const file = path.join(profiles, 'live.yaml');
    const write = async (text: string) => {
      // Editors save by writing a temp file and renaming it.
      await writeFile(`${file}.tmp`, text);
      await rename(`${file}.tmp`, file);
    };
    await write(`- name: a\n  baseurl: ${a.baseurl}\n  apikey: ""\n  model: m\n`);
    const { child, origin, stderr } = await serve(['--profiles', profiles]);
    const content = async () => (JSON.parse((await fetchText(`${origin}/v1/chat/completions`, chat('live'))).text) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content;
    assert.equal(await content(), 'from A');

    await write(`- name: b\n  baseurl: ${b.baseurl}\n  apikey: ""\n  model: m\n`);
    await until(async () => (await content()) === 'from B');

    await write('- name: [broken\n');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(await content(), 'from B', 'the last good version still serves');

    child.kill('SIGTERM');
    await collect(child);
    assert.match(stderr(), /live\.yaml.*keeping the last good version/);
    await rm(profiles, { recursive: true, force: true });
  });

  it('exits 2 with the reason when there are no profiles', async () => {
    const empty = await tempDir('failproxy-empty-');
    const result = await runCli(['serve', '--port', '0', '--profiles', path.join(empty, 'missing')], { env: cliEnv() });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no usable groups/);
  });

  it('--help and --version', async () => {
    const help = await runCli(['serve', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--api-key/);
    const version = await runCli(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
    const bad = await runCli(['serve', '--no-such-flag']);
    assert.equal(bad.code, 2);
  });
});

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
