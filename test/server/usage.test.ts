/**
 * Usage and cost, end to end: `failproxy serve` in front of fake upstreams
 * whose usage (and OpenRouter-style `usage.cost`) is known, then the sums in
 * `/metrics`, `/status`, the request log line and `failproxy logs --stats`.
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  completionBody,
  chunk,
  json,
  sse,
  startFakeUpstream,
  usageChunk,
  type FakeUpstream,
} from '../helpers/fake-upstream.js';
import { collect, runCli, startCli, waitForStdout } from '../helpers/cli.js';
import type { StatusBody } from '../../src/server/status.js';
import { usageFigures } from '../../src/logging/usage.js';
import { computeUsage, parseSince } from '../../src/logging/usage-stats.js';
import type { LogRecord } from '../../src/logging/types.js';

const PRICED_USAGE = {
  prompt_tokens: 1000,
  completion_tokens: 500,
  total_tokens: 1500,
  prompt_tokens_details: { cached_tokens: 200 },
  completion_tokens_details: { reasoning_tokens: 100 },
};
/** 1000 × $2/M + 500 × $10/M */
const PRICED_COST = 0.007;
const ROUTER_USAGE = { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30, cost: 0.0123 };

const close: Array<() => Promise<unknown> | void> = [];
after(async () => {
  for (const c of close.reverse()) await c();
});

let origin = '';
let logDir = '';
let server: ChildProcessWithoutNullStreams;

const chat = (model: string, stream = false): Promise<Response> =>
  fetch(`${origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
  });

async function upstream(...args: Parameters<typeof startFakeUpstream>): Promise<FakeUpstream> {
  const u = await startFakeUpstream(...args);
  close.push(() => u.close());
  return u;
}

before(async () => {
  const cheap = await upstream(json(completionBody('priced answer', { usage: PRICED_USAGE })));
  const down = await upstream(json({ error: { message: 'overloaded' } }, 503));
  const router = await upstream(
    sse([chunk({ role: 'assistant', content: 'routed' }), chunk({}, 'stop'), usageChunk(ROUTER_USAGE as never)]),
  );
  const profiles = await mkdtemp(path.join(tmpdir(), 'failproxy-usage-profiles-'));
  logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-usage-logs-'));
  await writeFile(
    path.join(profiles, 'priced.yaml'),
    `- name: cheap\n  baseurl: ${cheap.baseurl}\n  apikey: ""\n  model: m\n  price: { input: 2, output: 10 }\n`,
  );
  // The upstream's own cost wins over a (deliberately absurd) configured price.
  await writeFile(
    path.join(profiles, 'router.yaml'),
    `- name: down\n  baseurl: ${down.baseurl}\n  apikey: ""\n  model: m\n` +
      `- name: or\n  baseurl: ${router.baseurl}\n  apikey: ""\n  model: m\n  price: { input: 1000, output: 1000 }\n`,
  );
  server = startCli(['serve', '--port', '0', '--profiles', profiles, '--log-dir', logDir]);
  close.push(async () => {
    if (server.exitCode === null) server.kill('SIGTERM');
    await collect(server).catch(() => undefined);
  });
  [, origin = ''] = await waitForStdout(server, /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/);
  for (const res of [await chat('priced'), await chat('priced'), await chat('router', true)]) {
    assert.equal(res.status, 200);
    await res.text();
  }
});

describe('usage and cost', () => {
  it('/metrics counts tokens by kind and cost per answering endpoint', async () => {
    const text = await (await fetch(`${origin}/metrics`)).text();
    const sample = (labels: string, name = 'failproxy_tokens_total'): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
      assert.ok(line, `no sample ${name}{${labels}} in\n${text}`);
      return Number(line.split(' ').at(-1));
    };
    assert.equal(sample('group="priced",endpoint="cheap",kind="prompt"'), 2000);
    assert.equal(sample('group="priced",endpoint="cheap",kind="completion"'), 1000);
    assert.equal(sample('group="priced",endpoint="cheap",kind="cached"'), 400);
    assert.equal(sample('group="priced",endpoint="cheap",kind="reasoning"'), 200);
    assert.ok(
      Math.abs(sample('group="priced",endpoint="cheap"', 'failproxy_cost_usd_total') - 2 * PRICED_COST) < 1e-12,
    );
    assert.ok(Math.abs(sample('group="router",endpoint="or"', 'failproxy_cost_usd_total') - 0.0123) < 1e-12);
    assert.ok(!text.includes('endpoint="down",kind='), 'a failed endpoint used no tokens');
  });

  it('/status shows usage per endpoint and per group', async () => {
    const body = (await (await fetch(`${origin}/status`)).json()) as StatusBody;
    const priced = body.groups.find((g) => g.name === 'priced');
    const router = body.groups.find((g) => g.name === 'router');
    assert.deepEqual(
      { ...priced?.usage, cost: Number(priced?.usage.cost.toFixed(9)) },
      {
        requests: 2,
        prompt_tokens: 2000,
        completion_tokens: 1000,
        cached_tokens: 400,
        reasoning_tokens: 200,
        cost: 0.014,
        unpriced: 0,
      },
    );
    assert.equal(router?.endpoints.find((e) => e.name === 'down')?.usage.requests, 0);
    assert.equal(router?.endpoints.find((e) => e.name === 'or')?.usage.cost, 0.0123);
  });

  it('writes the cost on the request log line, and logs --stats sums it by group, endpoint and day', async () => {
    const [file] = await readdir(logDir);
    const lines = (await readFile(path.join(logDir, file!), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const costs = lines.filter((l) => l.event === 'request').map((l) => [l.group, l.cost]);
    assert.deepEqual(costs, [
      ['priced', PRICED_COST],
      ['priced', PRICED_COST],
      ['router', 0.0123],
    ]);

    const byEndpoint = await runCli([
      'logs',
      '--stats',
      '--json',
      '--by',
      'endpoint',
      '--since',
      '1h',
      '--log-dir',
      logDir,
    ]);
    assert.equal(byEndpoint.code, 0, byEndpoint.stderr);
    const usage = (JSON.parse(byEndpoint.stdout) as { usage: Array<Record<string, unknown>> }).usage;
    assert.deepEqual(
      usage.map((u) => [
        u.key,
        u.endpoint,
        u.requests,
        u.prompt_tokens,
        u.completion_tokens,
        u.cached_tokens,
        u.reasoning_tokens,
      ]),
      [
        ['priced', 'cheap', 2, 2000, 1000, 400, 200],
        ['router', 'or', 1, 10, 20, 0, 0],
      ],
    );

    const byDay = await runCli(['logs', '--stats', '--by', 'day', '--log-dir', logDir]);
    assert.equal(byDay.code, 0, byDay.stderr);
    assert.match(byDay.stdout, /DAY\s+REQUESTS\s+PROMPT\s+COMPLETION\s+CACHED\s+REASONING\s+COST/);
    assert.match(byDay.stdout, /total\s+3\s+2010\s+1020\s+400\s+200\s+\$0\.0263$/m);

    const bad = await runCli(['logs', '--stats', '--since', 'yesterday', '--log-dir', logDir]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid --since "yesterday"/);
  });
});

describe('usage figures', () => {
  it('reads cached and reasoning tokens, prefers the upstream cost, else prices per million', () => {
    assert.deepEqual(usageFigures(PRICED_USAGE, { input: 2, output: 10 }), {
      prompt_tokens: 1000,
      completion_tokens: 500,
      cached_tokens: 200,
      reasoning_tokens: 100,
      cost: PRICED_COST,
    });
    assert.equal(usageFigures(ROUTER_USAGE, { input: 1000, output: 1000 })?.cost, 0.0123);
    assert.equal(usageFigures({ prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 })?.cost, null);
    assert.equal(
      usageFigures({ prompt_tokens: 9, completion_tokens: 1, total_tokens: 10, prompt_cache_hit_tokens: 4 })
        ?.cached_tokens,
      4,
    );
    assert.equal(usageFigures(null), null);
  });

  it('counts requests without a known cost as unpriced instead of as free', () => {
    const record = (usage: Record<string, unknown>, cost?: number): LogRecord =>
      ({
        ts: '2026-12-04T10:00:00.000Z',
        level: 'info',
        event: 'request',
        id: 'x',
        group: 'g',
        endpoint: 'e',
        usage,
        ...(cost !== undefined ? { cost } : {}),
      }) as unknown as LogRecord;
    const [row] = computeUsage(
      [
        record({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }),
        record({ prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }, 0.5),
      ],
      'group',
    );
    assert.equal(row?.requests, 2);
    assert.equal(row?.cost, 0.5);
    assert.equal(row?.unpriced, 1);
  });

  it('--since takes spans and days', () => {
    const now = new Date(2026, 11, 4, 12, 0, 0);
    assert.equal(parseSince('90m', now)?.getTime(), now.getTime() - 90 * 60_000);
    assert.equal(parseSince('7d', now)?.getTime(), now.getTime() - 7 * 86_400_000);
    assert.equal(parseSince('2026-12-01', now)?.getTime(), new Date(2026, 11, 1).getTime());
    assert.equal(parseSince('2026-02-30', now), null);
    assert.equal(parseSince('soon', now), null);
  });
});
