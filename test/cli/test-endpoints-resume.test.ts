/**
 * `failproxy test-endpoints --resume` as the built CLI (run `npm run build`
 * first) against three fake upstreams that treat a prefilled assistant
 * message the three ways real servers do.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ResumeRow } from '../../src/probe/resume.js';
import { cliEnv, ROOT, runCli } from '../helpers/cli.js';
import { completionBody, json, sse, startFakeUpstream, wordStream, type Behaviour, type FakeUpstream, type ReceivedRequest } from '../helpers/fake-upstream.js';

const built = existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'));

interface Message {
  role: string;
  content: string;
}

const count = (from: number): string => Array.from({ length: 31 - from }, (_, i) => String(from + i)).join(' ');

function counting(req: ReceivedRequest, honourPrefill: boolean): Behaviour {
  const answer = (text: string): Behaviour => (req.body.stream === true ? sse(wordStream(text.split(/(?= )/))) : json(completionBody(text)));
  const messages = req.body.messages as Message[];
  if (!/Count from 1 to 30/.test(messages[0]?.content ?? '')) return answer('OK');
  const last = messages.at(-1)!;
  if (honourPrefill && last.role === 'assistant') {
    // Continues the assistant's text from its last number, as vLLM's
    // continue_final_message, DeepSeek's `prefix` or OpenRouter's prefill do.
    const reached = Number(last.content.trim().split(/\s+/).at(-1));
    return answer(` ${count(reached + 1)}`);
  }
  return answer(count(1));
}

describe('test-endpoints --resume (built CLI)', { skip: built ? false : 'run `npm run build` first' }, () => {
  const upstreams: FakeUpstream[] = [];
  let dir = '';
  let honours: FakeUpstream;
  let ignores: FakeUpstream;
  let rejects: FakeUpstream;

  before(async () => {
    honours = await startFakeUpstream((_n, req) => counting(req, true));
    // OpenAI's Chat Completions API has no prefill: a trailing assistant
    // message is answered with a new assistant turn, from the start (see
    // sgl-project/sglang#3971 "OAI API doesn't natively support prefilling an
    // assistants response", and ggml-org/llama.cpp#13174, where continuing the
    // last assistant message is called "not OpenAI's behavior").
    ignores = await startFakeUpstream((_n, req) => counting(req, false));
    // Servers with a strict request schema refuse the prefill's fields or a
    // conversation that ends with the assistant ("This model does not support
    // assistant message prefill. The conversation must end with a user message.").
    rejects = await startFakeUpstream((_n, req) =>
      (req.body.messages as Message[]).at(-1)?.role === 'assistant'
        ? json({ error: { message: 'This model does not support assistant message prefill. The conversation must end with a user message.', type: 'invalid_request_error' } }, 400)
        : counting(req, false),
    );
    upstreams.push(honours, ignores, rejects);
    const down = await startFakeUpstream(json({ error: { message: 'upstream exploded' } }, 500));
    upstreams.push(down);
    dir = await mkdtemp(path.join(tmpdir(), 'failproxy-resume-'));
    const ep = (name: string, baseurl: string, extra: Record<string, unknown> = {}) => ({ name, baseurl, apikey: 'sk-resume-0123456789', model: `m-${name}`, timeout: 5, ...extra });
    await writeFile(
      path.join(dir, 'mixed.json'),
      JSON.stringify({
        endpoints: [
          ep('honours', honours.baseurl),
          ep('ignores', ignores.baseurl, { prefill: true }),
          ep('rejects', rejects.baseurl, { type: 'openrouter', stream: true }),
          ep('down', down.baseurl),
        ],
      }),
    );
    await writeFile(path.join(dir, 'dead.json'), JSON.stringify([ep('dead', down.baseurl)]));
  });

  after(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('--json: a verdict per endpoint, what to put in the profile, and whether that is a change', async () => {
    const run = await runCli(['test-endpoints', '--profiles', dir, '-g', 'mixed', '--resume', '--json'], { env: cliEnv() });
    assert.equal(run.code, 0, run.stderr);
    const rows = new Map((JSON.parse(run.stdout) as ResumeRow[]).map((r) => [r.endpoint, r]));

    const h = rows.get('honours')!;
    assert.deepEqual([h.result, h.resume, h.suggested_prefill, h.prefill, h.prefill_source, h.prefill_differs], ['ok', 'continues', true, false, 'type', true]);
    assert.match(h.resume_answer, /^11 12 13/);

    const i = rows.get('ignores')!;
    assert.deepEqual([i.resume, i.suggested_prefill, i.prefill, i.prefill_source, i.prefill_differs], ['restarts', false, true, 'profile', true]);
    assert.match(i.resume_answer, /^1 2 3/);

    const r = rows.get('rejects')!;
    assert.deepEqual([r.resume, r.suggested_prefill, r.prefill, r.prefill_source, r.prefill_differs], ['rejected', false, true, 'type', true]);
    assert.match(r.resume_answer, /bad_request 400: This model does not support assistant message prefill/);

    const d = rows.get('down')!;
    assert.deepEqual([d.result, d.resume, d.suggested_prefill, d.prefill_differs], ['server', null, null, false]);
    assert.match(d.resume_answer, /not checked/);

    // What was sent: the count prompt at temperature 0, the partial answer as
    // the last assistant message with the flags servers understand, non-streaming.
    const sent = honours.requests.find((q) => (q.body.messages as Message[]).length === 2)!.body;
    assert.equal(sent.temperature, 0);
    assert.equal(sent.stream, false);
    assert.equal(sent.continue_final_message, true);
    assert.deepEqual((sent.messages as Message[]).at(-1), { role: 'assistant', content: '1 2 3 4 5 6 7 8 9 10', prefix: true });
  });

  it('the table says what to set, and the plain probe rows and exit code are unchanged', async () => {
    const run = await runCli(['test-endpoints', '--profiles', dir, '-g', 'mixed', '--resume'], { env: cliEnv() });
    assert.equal(run.code, 0, run.stderr);
    const line = (name: string): string => run.stdout.split('\n').find((l) => l.startsWith(`mixed  ${name} `) && /continues|restarts|rejected|unclear| - /.test(l)) ?? '';
    assert.match(line('honours'), /continues\s+set prefill: true \(now false, type default\)\s+11 12 13/);
    assert.match(line('ignores'), /restarts\s+set prefill: false \(now true\)\s+1 2 3/);
    assert.match(line('rejects'), /rejected\s+set prefill: false \(now true, type default\)\s+bad_request 400/);
    assert.match(run.stdout, /3 endpoints should change prefill/);
    assert.match(run.stdout, /4 endpoints: 3 ok, 1 failed/);
  });

  it('a restart is information, not a failure; a group with no working endpoint still exits 1', async () => {
    const dead = await runCli(['test-endpoints', '--profiles', dir, '-g', 'dead', '--resume', '--json'], { env: cliEnv() });
    assert.equal(dead.code, 1);
    assert.deepEqual((JSON.parse(dead.stdout) as ResumeRow[]).map((r) => [r.endpoint, r.resume]), [['dead', null]]);
    assert.match(dead.stderr, /no working endpoint in group dead/);
  });

  it('without --resume the rows have no resume fields and no prefill request is sent', async () => {
    const before = ignores.requests.length;
    const run = await runCli(['test-endpoints', '--profiles', dir, '-g', 'mixed', '--json'], { env: cliEnv() });
    assert.equal(run.code, 0, run.stderr);
    const rows = JSON.parse(run.stdout) as Array<Record<string, unknown>>;
    assert.ok(rows.every((r) => !('resume' in r)));
    assert.equal(ignores.requests.length - before, 1);
  });
});
