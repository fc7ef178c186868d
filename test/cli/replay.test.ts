/**
 * Request capture and replay as users run them: `serve --capture` saves a
 * failed request without any key (and without message text when asked),
 * `logs --request` says the capture exists, and `failproxy replay` sends the
 * same request again — here after the upstream recovered — and shows both outcomes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cliEnv, collect, runCli, startCli, waitForStdout } from '../helpers/cli.js';
import { completionBody, json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';

const UPSTREAM_KEY = 'sk-upstream-secret-0123456789';
const CLIENT_KEY = 'client-key-abcdef';
const SECRET_TEXT = 'my private question about the merger';

const cleanups: Array<() => Promise<unknown> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(
  flags: string[],
): Promise<{
  origin: string;
  upstream: FakeUpstream;
  profiles: string;
  captures: string;
  logDir: string;
  env: NodeJS.ProcessEnv;
}> {
  const upstream = await startFakeUpstream(json({ error: { message: 'overloaded' } }, 503));
  cleanups.push(() => upstream.close());
  const profiles = await mkdtemp(path.join(tmpdir(), 'failproxy-replay-profiles-'));
  await writeFile(
    path.join(profiles, 'g.yaml'),
    `- name: only\n  baseurl: ${upstream.baseurl}\n  apikey: \${UP_KEY}\n  model: m\n`,
  );
  const captures = await mkdtemp(path.join(tmpdir(), 'failproxy-captures-'));
  const logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-replay-logs-'));
  const env = cliEnv({ UP_KEY: UPSTREAM_KEY });
  const server = startCli(
    [
      'serve',
      '--port',
      '0',
      '--profiles',
      profiles,
      '--log-dir',
      logDir,
      '--api-key',
      CLIENT_KEY,
      '--capture',
      captures,
      ...flags,
    ],
    { env },
  );
  cleanups.push(async () => {
    if (server.exitCode === null) server.kill('SIGTERM');
    await collect(server).catch(() => undefined);
  });
  const [, origin] = await waitForStdout(server, /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/);
  return { origin: origin!, upstream, profiles, captures, logDir, env };
}

async function send(origin: string): Promise<{ status: number; id: string }> {
  const res = await fetch(`${origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'g',
      temperature: 0.3,
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: `${SECRET_TEXT}; my key is ${UPSTREAM_KEY}, theirs sk-or-v1-abcdefghijklmnop` },
      ],
    }),
  });
  await res.text();
  return { status: res.status, id: res.headers.get('x-request-id') ?? '' };
}

async function captureOf(dir: string, id: string): Promise<string> {
  const file = path.join(dir, `${id}.json`);
  for (let i = 0; i < 100 && !(await readdir(dir)).includes(`${id}.json`); i++)
    await new Promise((r) => setTimeout(r, 50));
  return readFile(file, 'utf8');
}

describe('capture and replay', () => {
  it('captures a failed request without keys, finds it from the logs, and replays it through the group', async () => {
    const { origin, upstream, profiles, captures, logDir, env } = await setup([]);
    const { status, id } = await send(origin);
    assert.equal(status, 502);
    const text = await captureOf(captures, id);
    assert.ok(!text.includes(UPSTREAM_KEY), 'the upstream key is not in the capture');
    assert.ok(!text.includes(CLIENT_KEY), 'the client key is not in the capture');
    assert.ok(!text.includes('sk-or-v1-abcdefghijklmnop'), 'a pasted key-shaped token is not in the capture');
    assert.ok(text.includes(SECRET_TEXT), 'the message text is kept without --capture-redact-content');
    const record = JSON.parse(text) as {
      original: { outcome: string; attempts: Array<{ class: string }> };
      request: { temperature: number };
    };
    assert.equal(record.original.outcome, 'failed');
    assert.equal(record.original.attempts[0]?.class, 'server');
    assert.equal(record.request.temperature, 0.3);

    const logs = await runCli(['logs', '--request', id, '--log-dir', logDir, '--capture', captures], { env });
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, new RegExp(`capture: .*${id}\\.json \\(failproxy replay ${id}\\)`));
    const none = await runCli(['logs', '--request', id, '--log-dir', logDir, '--capture', logDir], { env });
    assert.match(none.stdout, /no capture in /);

    // The upstream recovers; the replay goes through the same group in-process.
    upstream.setBehaviour(json(completionBody('recovered answer')));
    const before = upstream.requests.length;
    const replay = await runCli(['replay', id, '--capture', captures, '--profiles', profiles, '--log-dir', logDir], {
      env,
    });
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /outcome\s+failed 502\s+ok 200/);
    assert.match(replay.stdout, /attempts\s+only ✗ server 503 ✗ failed \(502\)\s+only ✓ \d+ ms/);
    assert.match(replay.stdout, /recovered answer/);
    const sent = upstream.requests.slice(before);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.body.temperature, 0.3);
    assert.equal((sent[0]?.body.messages as Array<{ content: string }>)[0]?.content, 'be brief');
    assert.match((sent[0]?.body.messages as Array<{ content: string }>)[1]?.content ?? '', new RegExp(SECRET_TEXT));

    upstream.setBehaviour(json({ error: { message: 'down again' } }, 503));
    const failed = await runCli(['replay', id, '--capture', captures, '--profiles', profiles, '--log-dir', logDir], {
      env,
    });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /got no answer either/);

    const missing = await runCli(['replay', 'no-such-id', '--capture', captures, '--profiles', profiles], { env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no capture of request "no-such-id"/);
  });

  it('with --capture-redact-content keeps no message text, and --capture-all keeps answered requests', async () => {
    const { origin, upstream, captures } = await setup(['--capture-redact-content', '--capture-all']);
    upstream.setBehaviour(json(completionBody('fine')));
    const { status, id } = await send(origin);
    assert.equal(status, 200);
    const text = await captureOf(captures, id);
    assert.ok(!text.includes(SECRET_TEXT), 'no message text');
    assert.ok(!text.includes('be brief'), 'no system text either');
    assert.match(text, /\[redacted: \d+ chars\]/);
    assert.ok(!text.includes(UPSTREAM_KEY));
    const record = JSON.parse(text) as { original: { outcome: string }; redacted_content: boolean };
    assert.equal(record.original.outcome, 'ok');
    assert.equal(record.redacted_content, true);
  });
});
