/**
 * The agent front doors as users start them: `failproxy serve --model-map`
 * on a profile with front-door options, with the official SDKs as clients,
 * and `/status` and `/metrics` counting these requests like chat ones.
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import {
  completionBody,
  json,
  sse,
  startFakeUpstream,
  wordStream,
  type FakeUpstream,
} from '../helpers/fake-upstream.js';
import { runCli, startCli, waitForStdout } from '../helpers/cli.js';
import { unavailable } from '../helpers/agent-upstreams.js';

const children: ChildProcessWithoutNullStreams[] = [];
const upstreams: FakeUpstream[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(upstreams.map((u) => u.close()));
});

describe('serve with the agent front doors', () => {
  it('maps claude-* names with --model-map, answers both SDKs through a failover, and counts them in /status and /metrics', async () => {
    const down = await startFakeUpstream(unavailable);
    const good = await startFakeUpstream((_n, req) =>
      req.body.stream === true ? sse(wordStream(['Hello', '!'])) : json(completionBody('Hello!')),
    );
    upstreams.push(down, good);
    const profiles = await mkdtemp(path.join(tmpdir(), 'failproxy-agent-profiles-'));
    await writeFile(
      path.join(profiles, 'agent.yaml'),
      [
        'early_start_s: 3',
        'endpoints:',
        `  - { name: down, baseurl: "${down.baseurl}", apikey: "", model: m1 }`,
        `  - { name: good, baseurl: "${good.baseurl}", apikey: "", model: deepseek-v4, reasoning_replay: false }`,
        '',
      ].join('\n'),
    );
    const logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-agent-logs-'));
    const child = startCli([
      'serve',
      '--port',
      '0',
      '--profiles',
      profiles,
      '--log-dir',
      logDir,
      '--model-map',
      'claude-*=agent',
    ]);
    children.push(child);
    const [, origin] = await waitForStdout(child, /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/);

    const anthropic = new Anthropic({ baseURL: origin!, apiKey: 'unused', maxRetries: 0 });
    const message = await anthropic.messages
      .stream({ model: 'claude-sonnet-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    assert.deepEqual(message.content, [{ type: 'text', text: 'Hello!' }]);
    const openai = new OpenAI({ baseURL: `${origin!}/v1`, apiKey: 'unused', maxRetries: 0 });
    const response = await openai.responses.create({ model: 'agent', input: 'hi' });
    assert.equal(response.output_text, 'Hello!');

    const status = (await (await fetch(`${origin!}/status`)).json()) as Record<string, unknown>;
    assert.match(JSON.stringify(status), /"agent"/);
    const metrics = await (await fetch(`${origin!}/metrics`)).text();
    assert.match(metrics, /failproxy_requests_total\{[^}]*group="agent"[^}]*\} 2/);
    child.kill('SIGTERM');
  });

  it('a malformed --model-map is a usage error (exit 2) that shows the expected form', async () => {
    const result = await runCli(['serve', '--port', '0', '--model-map', 'claude-sonnet']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--model-map expects PATTERN=GROUP/);
  });
});
