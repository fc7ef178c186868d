/**
 * `failproxy ask` on a real terminal: the built CLI under a pseudo-terminal
 * made by util-linux `script`, against fake upstreams. Skipped (not failed)
 * when `script` is not there.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { sse, json, startFakeUpstream, wordStream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { BIN, childEnv, ROOT, SKIP_UNBUILT, waitFor, workspace, type Workspace } from './ask-helpers.js';

function ptySkipReason(): string | false {
  if (SKIP_UNBUILT) return SKIP_UNBUILT;
  if (process.platform !== 'linux') return 'needs util-linux `script` (Linux only)';
  const probe = spawnSync('script', ['-qfec', 'true', '/dev/null'], { stdio: 'ignore', timeout: 5000 });
  if (probe.error || probe.status !== 0) return 'util-linux `script` is not available to make a pseudo-terminal';
  return false;
}
const skip = ptySkipReason();

const WORDS = ['The', ' answer', ' arrives', ' slowly.'];

let limited: FakeUpstream;
let slow: FakeUpstream;
let endless: FakeUpstream;
let ws: Workspace;

before(async () => {
  if (skip) return;
  limited = await startFakeUpstream(json({ error: { message: 'Rate limit exceeded', code: 429 } }, 429));
  slow = await startFakeUpstream(sse(wordStream(WORDS), { gapMs: 60 }));
  // Streams for a minute unless the client goes away.
  endless = await startFakeUpstream(sse(wordStream(Array.from({ length: 600 }, (_, i) => ` w${i}`)), { gapMs: 100 }));
  ws = await workspace({
    live: [
      { name: 'limited', baseurl: limited.baseurl },
      { name: 'slowpoke', baseurl: slow.baseurl },
    ],
    endless: [{ name: 'endless', baseurl: endless.baseurl }],
  });
});

after(async () => {
  if (skip) return;
  await Promise.all([limited.close(), slow.close(), endless.close(), ws.cleanup()]);
});

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string): string => s.replace(/\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*\u0007|\r/g, '');

interface PtyRun {
  output(): string;
  write(text: string): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

/** Run `failproxy ask ...args` with a pseudo-terminal as its stdin, stdout and stderr. */
function underPty(args: string[]): PtyRun {
  // A real size, as a terminal has; without it Ink treats every frame as full screen.
  const cmd = `stty rows 40 cols 100 2>/dev/null; exec ${[process.execPath, BIN, 'ask', ...args].map(quote).join(' ')}`;
  const env = childEnv({ TERM: 'xterm-256color' });
  // Ink renders only the last frame under CI; test the live path.
  delete env.CI;
  delete env.CONTINUOUS_INTEGRATION;
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return {
    output: () => stripAnsi(out),
    // Keystrokes go through the pty's line discipline: Ctrl-C becomes SIGINT for the foreground job.
    write: (text) => child.stdin.write(text),
    exited,
    kill: () => child.kill('SIGKILL'),
  };
}

async function settle(run: PtyRun, ms = 20_000) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.kill();
      reject(new Error(`the pty run did not end in ${ms} ms; output:\n${run.output()}`));
    }, ms);
  });
  try {
    return await Promise.race([run.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test('on a terminal: each attempt as it happens, the answer, and the footer', { skip, timeout: 30_000 }, async () => {
  const run = underPty([...ws.args, '-g', 'live', 'hello']);
  const { code } = await settle(run);
  const out = run.output();
  assert.equal(code, 0, out);
  assert.match(out, /\[1\] limited ✗ rate_limit 429 \(\d+ ms\): Rate limit exceeded/);
  assert.match(out, /\[2\] slowpoke ✓ first token/);
  assert.ok(out.includes(WORDS.join('')), out);
  // The footer (it may wrap at 100 columns); the model is what the upstream reported.
  assert.match(
    out,
    /✓ slowpoke \(upstream-model\) · 2 attempts · first token \d+ ms · total \d+ ms · 5 in · 7 out · 12\s+tokens/,
  );
});

test('on a terminal: Ctrl-C aborts the upstream request and exits 130', { skip, timeout: 30_000 }, async () => {
  const run = underPty([...ws.args, '-g', 'endless', 'go on']);
  try {
    await waitFor(() => run.output().includes(' w3'), 'the answer to start streaming', 15_000);
    assert.equal(endless.aborted, 0);
    run.write('\u0003');
    const { code } = await settle(run);
    assert.equal(code, 130, run.output());
    await waitFor(
      () => endless.aborted === 1 && endless.openSockets() === 0,
      'the upstream connection to close',
      5_000,
    );
    assert.match(run.output(), /✗ cancelled/);
  } finally {
    run.kill();
  }
});
