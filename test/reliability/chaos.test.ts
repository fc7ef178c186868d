/**
 * Chaos (SPEC §7 "nothing lost"): 800 requests at concurrency 50, half of
 * them streaming, through a group whose first two endpoints fail at random in
 * every way SPEC §3.2 names and whose third is healthy. Every request must get
 * its complete answer; nothing may throw unhandled; afterwards no upstream
 * request is left open and memory is back within bounds.
 *
 * Faults are chosen per (request, endpoint) from a seeded hash, so a run is
 * reproducible whatever order the concurrent requests arrive in. Streaming
 * requests get faults from before the first token, and streams that break
 * after sending the first half of the right answer: those are completed by
 * `resume` (default on, SPEC §3.11) — without it they could not fail over
 * (SPEC §3.4). Non-streaming requests also get streams that die after
 * unrelated tokens, which must fail over silently.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, request } from 'undici';
import { FailoverEngine } from '../../src/core/engine.js';
import { HealthTracker, type PlannedEndpoint } from '../../src/core/health.js';
import type { Endpoint, EngineEvent } from '../../src/core/types.js';
import { LogObserver } from '../../src/logging/observer.js';
import { JsonlLogger } from '../../src/logging/writer.js';
import { createProxyServer, type ProxyServer } from '../../src/server/app.js';
import { GroupRegistry } from '../../src/server/registry.js';
import {
  chunk,
  completionBody,
  json,
  sse,
  startFakeUpstream,
  wordStream,
  type Behaviour,
  type FakeUpstream,
  type ReceivedRequest,
  type SseItem,
} from '../helpers/fake-upstream.js';
import { endpoint, group, refusedBaseurl } from '../helpers/groups.js';

const SEED = Number(process.env.CHAOS_SEED ?? 0x5eed_c4a0);
const REQUESTS = Number(process.env.CHAOS_REQUESTS ?? 800);
const CONCURRENCY = 50;
const FAULT_RATE = 0.9;

const problems: unknown[] = [];
const onProblem = (err: unknown): void => void problems.push(err);
process.on('unhandledRejection', onProblem);
process.on('uncaughtException', onProblem);

/** Every request walks the group in file order: cooldowns would let the faulty endpoints off the hook. */
class NeverCooling extends HealthTracker {
  override plan(endpoints: readonly Endpoint[]): PlannedEndpoint[] {
    return endpoints.map((e) => ({ endpoint: e, cooling: false }));
  }
}

// ---------------------------------------------------------------------------
// Deterministic randomness.

function hash(...parts: Array<number | string>): number {
  let h = SEED >>> 0;
  for (const part of String(parts.join('|'))) {
    h = Math.imul(h ^ part.charCodeAt(0), 0x01000193) >>> 0;
  }
  // One round of mulberry32 to spread the bits.
  h = (h + 0x6d2b79f5) >>> 0;
  let t = Math.imul(h ^ (h >>> 15), h | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

// ---------------------------------------------------------------------------
// The answers and the faults.

function expectedAnswer(id: number): string {
  const words = Array.from({ length: 1 + (id % 17) }, (_, i) => ` w${i}`);
  return `reply ${id}:${words.join('')}`;
}

function answerWords(id: number): string[] {
  const text = expectedAnswer(id);
  // Cut at arbitrary places (even inside words): only the concatenation counts.
  const pieces: string[] = [];
  let from = 0;
  for (let k = 0; from < text.length; k++) {
    const size = 1 + Math.floor(hash(id, 'cut', k) * 6);
    pieces.push(text.slice(from, from + size));
    from += size;
  }
  return pieces;
}

function healthy(id: number, streamed: boolean): Behaviour {
  if (!streamed) return json(completionBody(expectedAnswer(id)));
  const items: SseItem[] = wordStream(answerWords(id));
  // Keep-alives between tokens are harmless.
  if (hash(id, 'ka') < 0.3) items.splice(2, 0, { comment: 'keep-alive' });
  return sse(items, hash(id, 'gap') < 0.2 ? { gapMs: 2 } : {});
}

const role = chunk({ role: 'assistant', content: '' });
const tokens = [role, chunk({ content: 'partial' }), chunk({ content: ' answer' })];
const html = (title: string): string =>
  `<!DOCTYPE html><html><head><title>${title}</title></head><body><h1>${title}</h1></body></html>`;
const errorJson = (status: number): Behaviour =>
  json(
    { error: { message: `upstream says ${status}`, type: 'upstream_error', code: status } },
    status,
    status === 429 ? { 'retry-after': '1' } : undefined,
  );

/** Faults that happen before the first token: safe for every request. */
const EARLY_FAULTS: Record<string, Behaviour> = {
  reset: { kind: 'reset' },
  hang: { kind: 'hang' },
  ...Object.fromEntries(
    [400, 401, 402, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504].map((s) => [`status ${s}`, errorJson(s)]),
  ),
  'status 302': { kind: 'text', status: 302, body: '', headers: { location: 'http://127.0.0.1:1/' } },
  'html 502': { kind: 'text', status: 502, body: html('502 Bad Gateway'), contentType: 'text/html' },
  'html 524': {
    kind: 'text',
    status: 524,
    body: html('example.com | 524: A timeout occurred'),
    contentType: 'text/html; charset=UTF-8',
  },
  'html 200': { kind: 'text', status: 200, body: html('Just a moment...'), contentType: 'text/html' },
  'plain text 500': { kind: 'text', status: 500, body: 'Internal Server Error' },
  '200 error object': json({
    error: { message: 'Provider returned error', code: 502, metadata: { raw: 'overloaded' } },
  }),
  '200 error string': json({ error: 'model is loading' }),
  '200 not json': { kind: 'text', status: 200, body: 'upstream fell over', contentType: 'application/json' },
  '200 truncated json': {
    kind: 'text',
    status: 200,
    body: '{"choices":[{"message":{"role":"assi',
    contentType: 'application/json',
  },
  '200 empty body': { kind: 'text', status: 200, body: '', contentType: 'application/json' },
  '200 empty completion': json(completionBody('')),
  '200 no choices': json({ id: 'x', object: 'chat.completion', choices: [] }),
  '200 too slow': { kind: 'json', body: completionBody('too late'), delayMs: 700 },
  'sse error event': sse([{ data: { error: { message: 'overloaded', code: 503 } } }]),
  'sse bare error line': sse([{ raw: '{"error": "Internal Server Error"}\n' }], { done: false }),
  'sse finish error': sse([chunk({}, 'error')]),
  'sse done only': sse([]),
  'sse comments only': sse([{ comment: 'OPENROUTER PROCESSING' }, { comment: 'OPENROUTER PROCESSING' }], {
    done: false,
  }),
  'sse comments then hang': sse(
    [{ comment: 'OPENROUTER PROCESSING' }, { wait: 120 }, { comment: 'OPENROUTER PROCESSING' }],
    { end: 'hang' },
  ),
  'sse head then hang': sse([], { end: 'hang' }),
  'sse role then reset': sse([role, { comment: 'keep-alive' }], { end: 'reset' }),
  'sse role then close': sse([role, chunk({})], { done: false }),
  'sse slow first token': sse([role, { wait: 700 }, ...wordStream(['late'])]),
  'sse malformed chunk': sse([{ raw: 'data: {"choices": [{"delta": {"content": "x"\n\n' }]),
  'sse non-object chunk': sse([{ raw: 'data: 42\n\n' }]),
  'sse 500 stream': sse([{ data: { error: { message: 'boom' } } }], { status: 500 }),
};

/** Streams that die after tokens: a non-streaming client must never notice. */
const LATE_FAULTS: Record<string, Behaviour> = {
  'tokens then reset': sse(tokens, { end: 'reset' }),
  'tokens then hang': sse(tokens, { end: 'hang' }),
  'tokens then close': sse(tokens, { done: false }),
  'tokens then done without finish': sse(tokens),
  'tokens then error event': sse([...tokens, { data: { error: { message: 'mid-stream failure' } } }]),
  'tokens then bare error': sse([...tokens, { raw: '{"error":"Internal Server Error"}\n' }], { done: false }),
  'tokens then malformed': sse([...tokens, { raw: 'data: {oops\n\n' }]),
  'tokens then finish error': sse([...tokens, chunk({}, 'error')]),
};

/**
 * Streams that break after the client saw the first part of the right answer.
 * With `resume` (on by default, SPEC §3.11) the next endpoint completes them.
 */
function midStreamFault(id: number, kind: string): Behaviour {
  const pieces = answerWords(id);
  const prefix: SseItem[] = [
    role,
    ...pieces.slice(0, Math.max(1, Math.floor(pieces.length / 2))).map((p) => chunk({ content: p })),
  ];
  switch (kind) {
    case 'prefix then reset':
      return sse(prefix, { end: 'reset' });
    case 'prefix then hang':
      return sse(prefix, { end: 'hang' });
    case 'prefix then close':
      return sse(prefix, { done: false });
    case 'prefix then done without finish':
      return sse(prefix);
    case 'prefix then error event':
      return sse([...prefix, { data: { error: { message: 'mid-stream failure', code: 502 } } }]);
    default:
      return sse([...prefix, { raw: 'data: {"choices": [{"delta": {"content": "cut' }], { end: 'reset' });
  }
}
const MID = [
  'prefix then reset',
  'prefix then hang',
  'prefix then close',
  'prefix then done without finish',
  'prefix then error event',
  'prefix then cut chunk',
];

const EARLY = Object.keys(EARLY_FAULTS);
const STREAMING = [...EARLY, ...MID];
const ALL = [...EARLY, ...Object.keys(LATE_FAULTS), ...MID];
const seen = new Map<string, number>();

interface ChaosBody {
  chaos_id?: number;
  chaos_stream?: boolean;
  stream?: boolean;
}

/** What a faulty upstream does for this request: usually a fault, sometimes the right answer. */
function faulty(name: string) {
  return (_n: number, req: ReceivedRequest): Behaviour => {
    const body = req.body as ChaosBody;
    const id = body.chaos_id ?? -1;
    const upstreamStreams = body.stream === true;
    if (hash(id, name, 'ok') >= FAULT_RATE) return healthy(id, upstreamStreams);
    const pool = body.chaos_stream === true ? STREAMING : ALL;
    const fault = pool[Math.floor(hash(id, name, 'fault') * pool.length)]!;
    seen.set(fault, (seen.get(fault) ?? 0) + 1);
    return EARLY_FAULTS[fault] ?? LATE_FAULTS[fault] ?? midStreamFault(id, fault);
  };
}

// ---------------------------------------------------------------------------

let a: FakeUpstream;
let b: FakeUpstream;
let c: FakeUpstream;
let upstreamAgent: Agent;
let engine: FailoverEngine;
let proxy: ProxyServer;
let origin: string;
let client: Agent;
let gc: () => void;
let logger: JsonlLogger;
const received = new Map<FakeUpstream, number>();
const events = new Map<string, number>();

before(async () => {
  setFlagsFromString('--expose-gc');
  gc = runInNewContext('gc') as () => void;
  a = await startFakeUpstream(faulty('a'));
  b = await startFakeUpstream(faulty('b'));
  c = await startFakeUpstream((_n, req) => healthy((req.body as ChaosBody).chaos_id ?? -1, req.body.stream === true));
  const fast = { timeoutMs: 300 };
  const lenient = { failures: 1_000_000, seconds: 1 };
  const groups = new GroupRegistry([
    group(
      'chaos',
      [
        endpoint(a.baseurl, { name: 'a', ...fast }),
        endpoint(b.baseurl, { name: 'b', ...fast, stream: true }),
        endpoint(c.baseurl, { name: 'c', timeoutMs: 10_000 }),
      ],
      { cooldown: lenient },
    ),
    group(
      'chaos-refused',
      [
        endpoint(await refusedBaseurl(), { name: 'refused', ...fast }),
        endpoint(a.baseurl, { name: 'a', ...fast }),
        endpoint(c.baseurl, { name: 'c', timeoutMs: 10_000 }),
      ],
      { cooldown: lenient },
    ),
  ]);
  // The engine's own Agent options, but ours, so its pool can be inspected.
  upstreamAgent = new Agent({
    headersTimeout: 0,
    bodyTimeout: 0,
    connect: { timeout: 30_000 },
    keepAliveTimeout: 4_000,
  });
  engine = new FailoverEngine({ dispatcher: upstreamAgent, health: new NeverCooling() });
  logger = new JsonlLogger({ dir: await mkdtemp(path.join(tmpdir(), 'failproxy-chaos-')), level: 'info' });
  const counting = {
    onEvent: (_context: unknown, event: EngineEvent) => void events.set(event.type, (events.get(event.type) ?? 0) + 1),
  };
  proxy = createProxyServer({ engine, groups, observers: [new LogObserver(logger), counting] });
  proxy.server.listen(0, '127.0.0.1');
  await once(proxy.server, 'listening');
  origin = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
  client = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 });
});

after(async () => {
  process.off('unhandledRejection', onProblem);
  process.off('uncaughtException', onProblem);
  await client?.close().catch(() => {});
  await proxy?.shutdown(1000);
  await upstreamAgent?.close().catch(() => {});
  await Promise.all([a?.close(), b?.close(), c?.close(), logger?.close()]);
});

interface Outcome {
  id: number;
  ok: boolean;
  why?: string;
}

function sseEvents(text: string): string[] {
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length));
}

async function ask(id: number): Promise<Outcome> {
  const streaming = id % 2 === 0;
  const model = id % 10 === 3 ? 'chaos-refused' : 'chaos';
  const res = await request(`${origin}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: client,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      messages: [{ role: 'user', content: `question ${id}` }],
      stream: streaming,
      chaos_id: id,
      chaos_stream: streaming,
    }),
  });
  const text = await res.body.text();
  const expected = expectedAnswer(id);
  if (res.statusCode !== 200) return { id, ok: false, why: `status ${res.statusCode}: ${text.slice(0, 300)}` };
  if (streaming) {
    const events = sseEvents(text);
    if (events.at(-1) !== '[DONE]') return { id, ok: false, why: `no [DONE]: ${text.slice(-300)}` };
    let content = '';
    const ids = new Set<string>();
    for (const data of events.slice(0, -1)) {
      const parsed = JSON.parse(data) as {
        id: string;
        error?: unknown;
        choices: Array<{ delta: { content?: string } }>;
      };
      if (parsed.error !== undefined) return { id, ok: false, why: `error event ${data}` };
      ids.add(parsed.id);
      content += parsed.choices[0]?.delta.content ?? '';
    }
    if (ids.size !== 1) return { id, ok: false, why: `chunk ids ${[...ids].join(', ')}` };
    return content === expected ? { id, ok: true } : { id, ok: false, why: `streamed ${JSON.stringify(content)}` };
  }
  const body = JSON.parse(text) as { choices: Array<{ message: { content: string | null } }> };
  const content = body.choices[0]?.message.content;
  return content === expected ? { id, ok: true } : { id, ok: false, why: `answered ${JSON.stringify(content)}` };
}

async function runAll(ids: number[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const id = ids[next++]!;
      outcomes.push(await ask(id).catch((err: unknown) => ({ id, ok: false, why: `client error: ${String(err)}` })));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return outcomes;
}

/** Open or busy upstream connections per origin, from the engine's pool. */
function busyUpstreamConnections(): number {
  let busy = 0;
  for (const stats of Object.values(upstreamAgent.stats)) busy += stats.running + stats.pending + stats.size;
  return busy;
}

async function settle(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

function memory(): { rss: number; heap: number } {
  // The fake upstreams keep every request they got; that is the test's memory, not the proxy's.
  for (const upstream of [a, b, c]) {
    received.set(upstream, (received.get(upstream) ?? 0) + upstream.requests.length);
    upstream.requests.splice(0);
  }
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

it(`answers ${REQUESTS} requests completely while two of three endpoints fail at random`, async (t) => {
  // Warm up (JIT, pools, buffers) before taking the memory baseline.
  const warm = await runAll(Array.from({ length: 100 }, (_, i) => 100_000 + i));
  assert.deepEqual(
    warm.filter((o) => !o.ok),
    [],
  );
  const baseline = memory();

  const started = Date.now();
  const outcomes = await runAll(Array.from({ length: REQUESTS }, (_, i) => i));
  const elapsed = Date.now() - started;

  const failures = outcomes.filter((o) => !o.ok);
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${outcomes.length} requests failed`);
  assert.equal(outcomes.length, REQUESTS);
  assert.deepEqual(problems, [], 'no unhandled rejection or exception');

  assert.equal(events.get('interrupted') ?? 0, 0, 'no stream ended with an error');
  assert.ok((events.get('resume') ?? 0) > 0, 'broken streams were resumed');
  // Every fault was actually exercised.
  const missing = ALL.filter((f) => !seen.has(f));
  assert.deepEqual(missing, [], 'faults never drawn');

  // No upstream request is left running once the clients have their answers.
  assert.ok(
    await settle(() => busyUpstreamConnections() === 0, 3000),
    `busy upstream connections: ${JSON.stringify(upstreamAgent.stats)}`,
  );

  const end = memory();
  const [na, nb, nc] = [a, b, c].map((u) => received.get(u) ?? 0) as [number, number, number];
  assert.ok(na >= REQUESTS && nb > REQUESTS / 2, `upstream requests a=${na} b=${nb}`);
  const grewMb = (end.heap - baseline.heap) / 2 ** 20;
  const rssGrewMb = (end.rss - baseline.rss) / 2 ** 20;
  // Generous: the point is "not proportional to the traffic" (a leak of a few KB per request would show).
  assert.ok(grewMb < 25, `heap grew ${grewMb.toFixed(1)} MB`);
  assert.ok(rssGrewMb < 150, `rss grew ${rssGrewMb.toFixed(1)} MB`);
  t.diagnostic(
    `${REQUESTS} requests in ${elapsed} ms; upstream requests a=${na} b=${nb} c=${nc}; resumed streams ${events.get('resume') ?? 0}; ` +
      `heap ${(baseline.heap / 2 ** 20).toFixed(1)} -> ${(end.heap / 2 ** 20).toFixed(1)} MB, rss ${(baseline.rss / 2 ** 20).toFixed(1)} -> ${(end.rss / 2 ** 20).toFixed(1)} MB`,
  );

  // Closing the pool leaves no socket open on any upstream: nothing was leaked or stuck.
  await client.close();
  await upstreamAgent.close();
  assert.ok(
    await settle(() => a.openSockets() + b.openSockets() + c.openSockets() === 0, 3000),
    `open upstream sockets a=${a.openSockets()} b=${b.openSockets()} c=${c.openSockets()}`,
  );
});
