/**
 * `/status` and `/metrics` on the real server in front of fake upstreams:
 * the exposition format parses, counters move with traffic, cooldown shows up
 * and clears, and both routes sit behind the API key.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { FailoverEngine } from '../../src/core/engine.js';
import type { Group } from '../../src/core/types.js';
import { createProxyServer, type ProxyServer } from '../../src/server/app.js';
import { createObservability } from '../../src/server/observability.js';
import { GroupRegistry } from '../../src/server/registry.js';
import type { StatusBody } from '../../src/server/status.js';
import {
  completionBody,
  json,
  sse,
  startFakeUpstream,
  wordStream,
  type FakeUpstream,
} from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';

// ---------------------------------------------------------------------------
// A strict parser for the Prometheus text exposition format (0.0.4).

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const HELP_RE = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL_PAIR_RE = new RegExp(`^(${LABEL})="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`);

/** Values are Go `ParseFloat` floats: NaN and Inf in any case (prom-client writes `Nan`). */
function parseValue(text: string, line: string): number {
  if (/^nan$/i.test(text)) return NaN;
  const inf = /^([+-]?)inf(?:inity)?$/i.exec(text);
  if (inf) return inf[1] === '-' ? -Infinity : Infinity;
  assert.match(text, /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/, `bad value in: ${line}`);
  return Number(text);
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const m = LABEL_PAIR_RE.exec(rest);
    assert.ok(m, `bad labels in: ${line}`);
    const [whole, key, raw] = m as unknown as [string, string, string];
    assert.equal(key in labels, false, `duplicate label ${key} in: ${line}`);
    labels[key] = raw.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(whole.length);
    if (rest.startsWith(',')) rest = rest.slice(1);
    else assert.equal(rest, '', `bad label separator in: ${line}`);
  }
  return labels;
}

/** The metric family a sample belongs to (histogram and summary series carry suffixes). */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const type = types.get(base);
      if (type === 'histogram' || (type === 'summary' && suffix !== '_bucket')) return base;
    }
  }
  return undefined;
}

function parseExposition(text: string): Exposition {
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline');
  const out: Exposition = { types: new Map(), help: new Map(), samples: [] };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const help = HELP_RE.exec(line);
      if (help) {
        assert.equal(out.help.has(help[1]!), false, `duplicate HELP: ${line}`);
        out.help.set(help[1]!, help[2]!);
        continue;
      }
      const type = TYPE_RE.exec(line);
      assert.ok(type, `bad comment line: ${line}`);
      assert.equal(out.types.has(type[1]!), false, `duplicate TYPE: ${line}`);
      out.types.set(type[1]!, type[2]!);
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    assert.ok(m, `bad sample line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    assert.ok(familyOf(name, out.types), `sample before its TYPE: ${line}`);
    out.samples.push({ name, labels: parseLabels(m[2] ?? '', line), value: parseValue(m[3]!, line) });
  }
  return out;
}

function value(expo: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = expo.samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return found?.value;
}

// ---------------------------------------------------------------------------

interface Harness {
  base: string;
  proxy: ProxyServer;
  engine: FailoverEngine;
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function upstream(...args: Parameters<typeof startFakeUpstream>): Promise<FakeUpstream> {
  const u = await startFakeUpstream(...args);
  cleanups.push(() => u.close());
  return u;
}

async function startServer(groups: Group[], apiKeys: string[] = [], defaultMetrics = false): Promise<Harness> {
  const engine = new FailoverEngine();
  const registry = new GroupRegistry(groups);
  const observability = createObservability(engine.health, registry, { defaultMetrics });
  const proxy = createProxyServer({
    engine,
    groups: registry,
    apiKeys,
    observers: observability.observers,
    extraRoutes: observability.routes,
  });
  await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.server.address() as AddressInfo;
  cleanups.push(async () => {
    await proxy.shutdown(1000);
    await engine.close();
  });
  return { base: `http://127.0.0.1:${port}`, proxy, engine };
}

async function chat(base: string, model: string, stream = false): Promise<number> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.text();
  return res.status;
}

async function scrape(base: string): Promise<Exposition> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

async function status(base: string): Promise<StatusBody> {
  const res = await fetch(`${base}/status`);
  assert.equal(res.status, 200);
  return (await res.json()) as StatusBody;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('/metrics', () => {
  it('is valid exposition text whose counters move with traffic', async () => {
    const good = await upstream(json(completionBody('hello')));
    const streaming = await upstream(sse(wordStream(['a', 'b'])));
    const down = await upstream(json({ error: { message: 'boom' } }, 503));
    const { base } = await startServer([
      group('main', [endpoint(down.baseurl, { name: 'down' }), endpoint(good.baseurl, { name: 'good' })]),
      group('stream', [endpoint(streaming.baseurl, { name: 'streamer' })]),
      group('dead', [endpoint(down.baseurl, { name: 'down' })]),
    ]);

    const before = await scrape(base);
    assert.equal(before.types.get('failproxy_requests_total'), 'counter');
    assert.equal(before.types.get('failproxy_attempts_total'), 'counter');
    assert.equal(before.types.get('failproxy_request_duration_seconds'), 'histogram');
    assert.equal(before.types.get('failproxy_ttft_seconds'), 'histogram');
    assert.equal(before.types.get('failproxy_in_flight_requests'), 'gauge');
    assert.equal(before.types.get('failproxy_endpoint_cooling'), 'gauge');
    assert.equal(value(before, 'failproxy_requests_total', { group: 'main' }), undefined);
    assert.equal(value(before, 'failproxy_endpoint_cooling', { group: 'main', endpoint: 'good' }), 0);

    assert.equal(await chat(base, 'main'), 200);
    assert.equal(await chat(base, 'main'), 200);
    assert.equal(await chat(base, 'stream', true), 200);
    assert.equal(await chat(base, 'dead'), 502);

    const m = await scrape(base);
    assert.equal(value(m, 'failproxy_requests_total', { group: 'main', endpoint: 'good', outcome: 'ok' }), 2);
    assert.equal(value(m, 'failproxy_requests_total', { group: 'stream', endpoint: 'streamer', outcome: 'ok' }), 1);
    assert.equal(value(m, 'failproxy_requests_total', { group: 'dead', endpoint: '', outcome: 'failed' }), 1);
    assert.equal(value(m, 'failproxy_attempts_total', { group: 'main', endpoint: 'down', result: 'server' }), 2);
    assert.equal(value(m, 'failproxy_attempts_total', { group: 'main', endpoint: 'good', result: 'ok' }), 2);
    assert.equal(value(m, 'failproxy_attempts_total', { group: 'dead', endpoint: 'down', result: 'server' }), 1);
    assert.equal(value(m, 'failproxy_request_duration_seconds_count', { group: 'main' }), 2);
    assert.equal(value(m, 'failproxy_request_duration_seconds_count', { group: 'dead' }), 1);
    assert.equal(value(m, 'failproxy_request_duration_seconds_bucket', { group: 'main', le: '+Inf' }), 2);
    assert.equal(value(m, 'failproxy_ttft_seconds_count', { group: 'stream' }), 1);
    assert.equal(value(m, 'failproxy_ttft_seconds_count', { group: 'dead' }), undefined);
    assert.equal(value(m, 'failproxy_in_flight_requests'), 0);
    assert.equal(m.types.has('process_cpu_user_seconds_total'), false, 'default metrics were turned off');
  });

  it('counts a request in flight while it runs', async () => {
    const slow = await upstream({ kind: 'json', body: completionBody('late'), delayMs: 300 });
    const { base } = await startServer([group('slow', [endpoint(slow.baseurl, { name: 'slow' })])]);
    const pending = chat(base, 'slow');
    await sleep(100);
    assert.equal(value(await scrape(base), 'failproxy_in_flight_requests'), 1);
    assert.equal(await pending, 200);
    assert.equal(value(await scrape(base), 'failproxy_in_flight_requests'), 0);
  });
});

describe('/status', () => {
  it('shows an endpoint cooling after repeated failures, then ok after a successful half-open probe', async () => {
    const flaky = await upstream(json({ error: { message: 'overloaded, key sk-leaky-0123456789' } }, 500));
    const backup = await upstream(json(completionBody('backup')));
    const g = group(
      'flaky',
      [endpoint(flaky.baseurl, { name: 'flaky' }), endpoint(backup.baseurl, { name: 'backup' })],
      {
        cooldown: { failures: 2, seconds: 1 },
        skipped: [{ name: 'nokey', reason: 'missing env OPENROUTER_API_KEY' }],
      },
    );
    const { base } = await startServer([g]);

    const fresh = await status(base);
    assert.equal(typeof fresh.uptime_s, 'number');
    const [grp] = fresh.groups;
    assert.equal(grp?.name, 'flaky');
    assert.deepEqual(grp?.skipped, [{ name: 'nokey', reason: 'missing env OPENROUTER_API_KEY' }]);
    assert.deepEqual(grp?.endpoints[0], {
      name: 'flaky',
      model: 'test-model',
      state: 'ok',
      cooling_until: null,
      reason: null,
      message: null,
      consecutive_failures: 0,
      window: { successes: 0, failures: {}, p50_ms: null, p95_ms: null, ttft_p50_ms: null, ttft_p95_ms: null },
      usage: { requests: 0, prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, cost: 0, unpriced: 0 },
    });

    assert.equal(await chat(base, 'flaky'), 200);
    assert.equal(await chat(base, 'flaky'), 200);
    const cooling = await status(base);
    const flakyStatus = cooling.groups[0]!.endpoints[0]!;
    assert.equal(flakyStatus.state, 'cooling');
    assert.equal(flakyStatus.reason, 'server');
    assert.equal(flakyStatus.consecutive_failures, 2);
    assert.ok(flakyStatus.cooling_until && Date.parse(flakyStatus.cooling_until) > Date.now() - 100);
    assert.match(flakyStatus.message ?? '', /overloaded/);
    assert.deepEqual(flakyStatus.window.failures, { server: 2 });
    assert.equal(flakyStatus.window.successes, 0);
    assert.equal(typeof flakyStatus.window.p95_ms, 'number');
    const backupStatus = cooling.groups[0]!.endpoints[1]!;
    assert.equal(backupStatus.state, 'ok');
    assert.equal(backupStatus.window.successes, 2);
    assert.equal(typeof backupStatus.window.ttft_p50_ms, 'number');
    const raw = JSON.stringify(cooling);
    assert.doesNotMatch(raw, /sk-leaky-0123456789/);
    assert.doesNotMatch(raw, /sk-test-0123456789abcdef/);
    assert.equal(value(await scrape(base), 'failproxy_endpoint_cooling', { group: 'flaky', endpoint: 'flaky' }), 1);

    flaky.setBehaviour(json(completionBody('recovered')));
    await sleep(1100);
    assert.equal((await status(base)).groups[0]!.endpoints[0]!.state, 'half_open');
    assert.equal(await chat(base, 'flaky'), 200);
    const healed = (await status(base)).groups[0]!.endpoints[0]!;
    assert.equal(healed.state, 'ok');
    assert.equal(healed.cooling_until, null);
    assert.equal(healed.consecutive_failures, 0);
    assert.equal(healed.window.successes, 1);
    assert.deepEqual(healed.window.failures, { server: 2 });
    assert.equal(value(await scrape(base), 'failproxy_endpoint_cooling', { group: 'flaky', endpoint: 'flaky' }), 0);
  });
});

describe('auth', () => {
  it('/status and /metrics need the API key when keys are configured', async () => {
    const good = await upstream(json(completionBody('hi')));
    const { base } = await startServer([group('g', [endpoint(good.baseurl)])], ['client-key-123456'], true);
    for (const route of ['/status', '/metrics']) {
      const denied = await fetch(`${base}${route}`);
      assert.equal(denied.status, 401, route);
      assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
      const wrong = await fetch(`${base}${route}`, { headers: { authorization: 'Bearer nope-nope' } });
      assert.equal(wrong.status, 401, route);
      await wrong.text();
      const allowed = await fetch(`${base}${route}`, { headers: { authorization: 'Bearer client-key-123456' } });
      assert.equal(allowed.status, 200, route);
      const text = await allowed.text();
      if (route === '/metrics') {
        // As `serve` runs it: with prom-client's process metrics, still valid exposition.
        const expo = parseExposition(text);
        assert.equal(expo.types.get('process_cpu_user_seconds_total'), 'counter');
        assert.equal(value(expo, 'failproxy_endpoint_cooling', { group: 'g' }), 0);
      }
    }
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    await health.text();
  });
});
