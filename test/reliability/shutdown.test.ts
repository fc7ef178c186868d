/**
 * Shutdown under load (SPEC §4): `SIGTERM` while 50 streams are in flight —
 * every stream completes, new connections are refused at once, and the
 * process exits 0. Runs the built CLI (`npm run build` first; `npm test` does).
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { collect, startCli, waitForStdout } from '../helpers/cli.js';
import { sse, startFakeUpstream, wordStream, type FakeUpstream } from '../helpers/fake-upstream.js';

const STREAMS = 50;
const WORDS = Array.from({ length: 25 }, (_, i) => `w${i} `);

let upstream: FakeUpstream | undefined;
let ended = 0;
after(async () => {
  await upstream?.close();
});

interface StreamResult {
  status: number;
  content: string;
  done: boolean;
  error: string | null;
}

/** One streaming request; resolves when the response ends. `onFirstByte` fires at the first chunk. */
function stream(port: number, onFirstByte: () => void): Promise<StreamResult> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/chat/completions',
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.once('data', onFirstByte);
        res.on('data', (c: string) => (text += c));
        res.on('error', reject);
        res.on('end', () => {
          ended += 1;
          const events = text
            .split('\n\n')
            .filter((e) => e.startsWith('data: '))
            .map((e) => e.slice('data: '.length));
          let content = '';
          let error: string | null = null;
          for (const data of events) {
            if (data === '[DONE]') continue;
            const parsed = JSON.parse(data) as { error?: unknown; choices?: Array<{ delta: { content?: string } }> };
            if (parsed.error !== undefined) error = data;
            content += parsed.choices?.[0]?.delta.content ?? '';
          }
          resolve({ status: res.statusCode ?? 0, content, done: events.at(-1) === '[DONE]', error });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves with the connect error code, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

it(`SIGTERM with ${STREAMS} streams in flight: all complete, new connections are refused, exit 0`, async () => {
  // Each stream takes about 2.5 s, so all of them are mid-answer when the signal arrives.
  upstream = await startFakeUpstream(sse(wordStream(WORDS), { gapMs: 100 }));
  const profiles = await mkdtemp(path.join(tmpdir(), 'failproxy-shutdown-profiles-'));
  const logs = await mkdtemp(path.join(tmpdir(), 'failproxy-shutdown-logs-'));
  await writeFile(
    path.join(profiles, 'slow.json'),
    JSON.stringify([{ name: 'slow', baseurl: upstream.baseurl, apikey: '', model: 'm', timeout: 30 }]),
  );
  const child = startCli(['serve', '--profiles', profiles, '--port', '0', '--log-dir', logs]);
  const exited = collect(child, undefined, 60_000);
  const [, p] = await waitForStdout(child, /listening on http:\/\/127\.0\.0\.1:(\d+)\/v1/);
  const port = Number(p);

  let started = 0;
  let allStarted!: () => void;
  const streaming = new Promise<void>((resolve) => (allStarted = resolve));
  const results = Promise.all(
    Array.from({ length: STREAMS }, () =>
      stream(port, () => {
        if (++started === STREAMS) allStarted();
      }),
    ),
  );
  await streaming;
  assert.equal(upstream.requests.length, STREAMS);

  child.kill('SIGTERM');
  // The listener closes as soon as the signal is handled; poll until a connect is refused.
  let refused = '';
  const deadline = Date.now() + 2_000;
  while (Date.now() < deadline) {
    refused = await tryConnect(port);
    if (refused === 'ECONNREFUSED') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(refused, 'ECONNREFUSED', 'new connections are refused while draining');
  const endedWhenRefused = ended;

  const answers = await results;
  const expected = WORDS.join('');
  for (const answer of answers) {
    assert.equal(answer.status, 200);
    assert.equal(answer.error, null);
    assert.equal(answer.content, expected);
    assert.ok(answer.done, 'ends with [DONE]');
  }
  assert.ok(endedWhenRefused < STREAMS, 'refused while streams were still in flight');
  assert.equal(upstream.aborted, 0, 'no upstream request was cut');

  const result = await exited;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /SIGTERM: finishing \d+ in-flight request/);
});
