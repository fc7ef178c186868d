/** The resilience group options in profiles (SPEC §3.11). */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { loadProfileFile } from '../../src/config/profiles.js';

async function load(text: string) {
  const dir = await mkdtemp(path.join(tmpdir(), 'failproxy-res-'));
  const file = path.join(dir, 'g.yaml');
  await writeFile(file, text);
  return loadProfileFile(file, {});
}

const endpoints = `endpoints:\n  - baseurl: http://127.0.0.1:1/v1\n    apikey: ""\n    model: m\n    prefill: false\n`;

it('reads retry, resume, hedge_ms, deadline, failover_on_content_filter and prefill', async () => {
  const { group, problems } = await load(
    `retry: { attempts: 2, on: [rate_limit, server], base_ms: 100, max_ms: 1000, retry_after_max_s: 5 }\nresume: false\nhedge_ms: 300\ndeadline: 20\nfailover_on_content_filter: false\n${endpoints}`,
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(group?.retry, { attempts: 2, on: ['rate_limit', 'server'], baseMs: 100, maxMs: 1000, retryAfterMaxS: 5 });
  assert.equal(group?.resume, false);
  assert.equal(group?.hedgeMs, 300);
  assert.equal(group?.deadlineMs, 20_000);
  assert.equal(group?.failoverOnContentFilter, false);
  assert.equal(group?.endpoints[0]?.prefill, false);
});

it('leaves the defaults to the engine when the options are absent', async () => {
  const { group } = await load(endpoints);
  assert.equal(group?.retry, undefined);
  assert.equal(group?.hedgeMs, undefined);
});

it('reports every wrong option with its path and keeps the file out', async () => {
  const { group, problems } = await load(`retry: { attempts: -1, on: [sometimes] }\nhedge_ms: soon\ndeadline: 0\nresume: maybe\n${endpoints}`);
  assert.equal(group, null);
  assert.deepEqual(problems.filter((p) => p.severity === 'error').map((p) => p.path).sort(), ['deadline', 'hedge_ms', 'resume', 'retry.attempts', 'retry.on']);
});
