/**
 * `failproxy ask` piped (stdout is not a TTY): the built CLI as a child process
 * against fake upstreams on loopback.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  completionBody,
  json,
  sse,
  startFakeUpstream,
  wordStream,
  chunk,
  type FakeUpstream,
} from '../helpers/fake-upstream.js';
import { ROOT, runAsk, SKIP_UNBUILT, waitFor, workspace, type Workspace } from './ask-helpers.js';

const skip = SKIP_UNBUILT;

let ok: FakeUpstream;
let limited: FakeUpstream;
let down: FakeUpstream;
let cut: FakeUpstream;
let endless: FakeUpstream;
let ws: Workspace;

const ANSWER = ['Hello', ' from', ' the', ' fake', ' upstream.'];

before(async () => {
  if (skip) return;
  ok = await startFakeUpstream((_n, req) =>
    req.body.stream === true ? sse(wordStream(ANSWER)) : json(completionBody(ANSWER.join(''))),
  );
  limited = await startFakeUpstream(json({ error: { message: 'Rate limit exceeded', code: 429 } }, 429));
  down = await startFakeUpstream(json({ detail: 'No instances available' }, 503));
  // Commits, then the connection breaks before a finish_reason.
  cut = await startFakeUpstream(
    sse([chunk({ role: 'assistant', content: '' }), chunk({ content: 'partial' }), chunk({ content: ' ans' })], {
      end: 'reset',
    }),
  );
  endless = await startFakeUpstream(sse(wordStream(Array.from({ length: 600 }, (_, i) => ` w${i}`)), { gapMs: 50 }));
  ws = await workspace({
    endless: [{ name: 'endless', baseurl: endless.baseurl }],
    good: [{ name: 'ok-a', baseurl: ok.baseurl }],
    failover: [
      { name: 'limited', baseurl: limited.baseurl },
      { name: 'steady', baseurl: ok.baseurl },
    ],
    broken: [
      { name: 'limited', baseurl: limited.baseurl },
      { name: 'down', baseurl: down.baseurl },
    ],
    cutoff: [{ name: 'cutter', baseurl: cut.baseurl }],
  });
});

after(async () => {
  if (skip) return;
  await Promise.all([ok.close(), limited.close(), down.close(), cut.close(), endless.close(), ws.cleanup()]);
});

const lastUserMessage = (u: FakeUpstream): unknown => {
  const messages = u.requests.at(-1)?.body.messages as { role: string; content: unknown }[] | undefined;
  return messages?.at(-1)?.content;
};

test('piped: stdout is exactly the answer and a newline, nothing on stderr', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'good', 'say', 'hello']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `${ANSWER.join('')}\n`);
  assert.equal(run.stderr, '');
  assert.equal(lastUserMessage(ok), 'say hello');
  const sent = ok.requests.at(-1)?.body;
  assert.equal(sent?.stream, true);
  assert.deepEqual(sent?.stream_options, { include_usage: true });
});

test('the prompt can come from stdin alone', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'good'], { stdin: 'what is in the pipe?\n' });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(lastUserMessage(ok), 'what is in the pipe?');
  assert.equal(run.stdout, `${ANSWER.join('')}\n`);
});

test('arguments and stdin combine: arguments, a blank line, then stdin', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'good', 'summarize', 'this:'], { stdin: 'line one\nline two\n' });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(lastUserMessage(ok), 'summarize this:\n\nline one\nline two');
});

test('a stdin that stays open and silent does not hang when the arguments give a prompt', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'good', 'hi'], { silentOpenStdin: true, timeoutMs: 15_000 });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `${ANSWER.join('')}\n`);
  assert.equal(lastUserMessage(ok), 'hi');
});

test('-s, -t and --max-tokens reach the upstream', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'good', '-s', 'be brief', '-t', '0.3', '--max-tokens', '64', 'hi']);
  assert.equal(run.code, 0, run.stderr);
  const body = ok.requests.at(-1)?.body;
  assert.deepEqual(body?.messages, [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hi' },
  ]);
  assert.equal(body?.temperature, 0.3);
  assert.equal(body?.max_tokens, 64);
});

test('every endpoint failed: exit 1, each endpoint and why on stderr, nothing on stdout', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'broken', 'hi']);
  assert.equal(run.code, 1);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /all 2 endpoints of group 'broken' failed/);
  assert.match(run.stderr, /\[1\] limited: rate_limit 429 .*Rate limit exceeded/);
  assert.match(run.stderr, /\[2\] down: server 503 .*No instances available/);
});

test(
  'a stream that breaks after the answer started: partial answer printed, said on stderr, exit 1',
  { skip },
  async () => {
    const run = await runAsk([...ws.args, '-g', 'cutoff', 'hi']);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, 'partial ans\n');
    assert.match(run.stderr, /incomplete: cutter broke off mid-answer \(stream_interrupted/);
  },
);

test('Ctrl-C (SIGINT) while streaming: the upstream request is aborted, exit 130', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'endless', '-v', 'go on'], {
    interruptWhen: (out) => out.includes(' w3'),
  });
  assert.equal(run.code, 130, run.stderr);
  assert.match(run.stdout, /^ w0 w1 w2 w3/);
  assert.ok(run.stdout.endsWith('\n'));
  assert.match(run.stderr, /\[1\] endless ✗ cancelled/);
  await waitFor(() => endless.aborted === 1 && endless.openSockets() === 0, 'the upstream connection to close');
  const request = (await ws.logLines()).filter((l) => l.event === 'request' && l.group === 'endless').at(-1);
  assert.equal(request?.outcome, 'cancelled');
});

test('unknown group: exit 2 with the list of groups, no upstream contacted', { skip }, async () => {
  const before = ok.requests.length;
  const run = await runAsk([...ws.args, '-g', 'nope', 'hi']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /unknown group 'nope'; groups: broken, cutoff, endless, failover, good/);
  assert.equal(ok.requests.length, before);
});

test('no -g with several groups: exit 2 listing them; FAILPROXY_GROUP picks one', { skip }, async () => {
  const ambiguous = await runAsk([...ws.args, 'hi']);
  assert.equal(ambiguous.code, 2);
  assert.match(ambiguous.stderr, /FAILPROXY_GROUP.*groups: broken, cutoff, endless, failover, good/);
  const fromEnv = await runAsk([...ws.args, 'hi'], { env: { FAILPROXY_GROUP: 'good' } });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  assert.equal(fromEnv.stdout, `${ANSWER.join('')}\n`);
});

test('no prompt at all: exit 2', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'good']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /no prompt/);
  const blank = await runAsk([...ws.args, '-g', 'good'], { stdin: '\n  \n' });
  assert.equal(blank.code, 2);
});

test('bad numbers are usage errors: exit 2', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'good', '--max-tokens', 'lots', 'hi']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--max-tokens expects a whole number/);
  const temp = await runAsk([...ws.args, '-g', 'good', '-t', 'hot', 'hi']);
  assert.equal(temp.code, 2);
  assert.match(temp.stderr, /--temperature expects a number/);
});

test('--json: the final chat.completion with the attempt trace', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'failover', '--json', 'hi']);
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout) as {
    object: string;
    choices: { message: { content: string } }[];
    usage?: { total_tokens: number };
    failproxy: {
      endpoint: string;
      group: string;
      ttft_ms: number;
      ms: number;
      attempts: { endpoint: string; class: string | null; status: number | null }[];
    };
  };
  assert.equal(out.object, 'chat.completion');
  assert.equal(out.choices[0]?.message.content, ANSWER.join(''));
  assert.equal(out.usage?.total_tokens, 12);
  assert.equal(out.failproxy.group, 'failover');
  assert.equal(out.failproxy.endpoint, 'steady');
  assert.equal(typeof out.failproxy.ttft_ms, 'number');
  assert.equal(typeof out.failproxy.ms, 'number');
  assert.deepEqual(
    out.failproxy.attempts.map((a) => [a.endpoint, a.class, a.status]),
    [
      ['limited', 'rate_limit', 429],
      ['steady', null, null],
    ],
  );
});

test('--no-stream: the same text, and the upstream was asked without streaming', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'good', '--no-stream', 'hi']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `${ANSWER.join('')}\n`);
  const body = ok.requests.at(-1)?.body;
  assert.equal(body?.stream, false);
  assert.equal(body?.stream_options, undefined);
});

test('-v: one line per attempt on stderr, stdout still only the answer', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'failover', '-v', 'hi']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `${ANSWER.join('')}\n`);
  const lines = run.stderr.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^\[1\] limited ✗ rate_limit 429 \(\d+ ms\): Rate limit exceeded$/);
  assert.match(lines[1] ?? '', /^\[2\] steady ✓ \d+(\.\d)? m?s/);
  assert.equal(lines.length, 2);
});

test('the log dir gets the same request and attempt lines as serve, with source ask', { skip }, async () => {
  const run = await runAsk([...ws.args, '-g', 'failover', 'log me']);
  assert.equal(run.code, 0, run.stderr);
  const lines = await ws.logLines();
  const request = lines.filter((l) => l.event === 'request' && l.group === 'failover').at(-1);
  assert.ok(request, 'a request line');
  assert.equal(request.source, 'ask');
  assert.equal(request.outcome, 'ok');
  assert.equal(request.endpoint, 'steady');
  assert.equal(request.attempts, 2);
  const attempts = lines.filter((l) => l.event === 'attempt' && l.id === request.id);
  assert.deepEqual(
    attempts.map((a) => [a.endpoint, a.ok, a.class]),
    [
      ['limited', false, 'rate_limit'],
      ['steady', true, null],
    ],
  );
});

test('with one group, -g may be left out; --demo asks the demo group', { skip }, async (t) => {
  const single = await workspace({ only: [{ name: 'ok-a', baseurl: ok.baseurl }] });
  t.after(() => single.cleanup());
  const run = await runAsk([...single.args, 'hi']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `${ANSWER.join('')}\n`);
  const demo = await runAsk([...single.args, '--demo', 'hi']);
  assert.equal(demo.code, 0, demo.stderr);
  assert.match(demo.stdout, /FailProxy demo/);
});

test('a group whose file is broken is reported with the reason, not just as unknown', { skip }, async (t) => {
  const broken = await workspace({ fine: [{ name: 'ok-a', baseurl: ok.baseurl }] });
  t.after(() => broken.cleanup());
  await writeFile(path.join(broken.profiles, 'oops.json'), '[{"name": "x", "baseurl": }]');
  const run = await runAsk([...broken.args, '-g', 'oops', 'hi']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /unknown group 'oops'; groups: fine\n\s+error: .*oops\.json/);
  const fromEnv = await runAsk([...broken.args, 'hi'], { env: { FAILPROXY_GROUP: 'nah' } });
  assert.equal(fromEnv.code, 2);
  assert.match(fromEnv.stderr, /unknown group 'nah' \(from FAILPROXY_GROUP\); groups: fine/);
});

/** Bare packages reached from `file` through static (non-type) imports; `import()` is not followed. */
function staticPackages(file: string, seen = new Set<string>(), found = new Set<string>()): Set<string> {
  if (seen.has(file)) return found;
  seen.add(file);
  const source = readFileSync(file, 'utf8');
  const re = /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (const match of source.matchAll(re)) {
    const spec = match[1]!;
    if (!spec.startsWith('.')) {
      found.add(spec);
      continue;
    }
    const base = path.resolve(path.dirname(file), spec).replace(/\.js$/, '');
    const next = [`${base}.ts`, `${base}.tsx`].find((f) => existsSync(f));
    if (next) staticPackages(next, seen, found);
  }
  return found;
}

test('the piped path never loads Ink or React (only a dynamic import on a TTY does)', () => {
  const packages = [...staticPackages(path.join(ROOT, 'src', 'cli', 'commands', 'ask.ts'))];
  assert.ok(packages.includes('commander'), packages.join(', '));
  assert.deepEqual(
    packages.filter((p) => /^(ink|react)(\/|$)|^ink-/.test(p)),
    [],
  );
  const tty = [...staticPackages(path.join(ROOT, 'src', 'ui', 'run-ask-tty.tsx'))];
  assert.ok(tty.includes('ink'), 'the walker follows imports');
});
