// Soak: N minutes of mixed, faulty traffic through a spawned `failproxy serve`
// (the built dist/, so run `npm run build` first). Prints, every interval, the
// proxy's RSS and open file descriptors (/proc/<pid>/fd), the upstreams' open
// sockets and the success rate. A leak shows as RSS or fds that keep growing.
//
//   node bench/soak.js [--minutes 10] [--concurrency 32] [--interval 10]
//
// The group: two flaky endpoints (about 80% of their answers fail, in every
// transient way: resets, hangs, 5xx, HTML pages, 200s carrying errors, empty
// answers, keep-alive-only streams, streams cut mid-answer) and one healthy
// endpoint. Statuses that cool an endpoint down for minutes (401/402/403/404/
// 429) are left out: they would take the flaky endpoints out of the rotation.
// Traffic: streaming and non-streaming requests that must come back complete,
// clients that hang up mid-stream, and malformed requests that must get a 4xx.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
/* global AbortController */
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} expects a positive number`);
  return value;
}

const MINUTES = option('minutes', 10);
const CONCURRENCY = option('concurrency', 32);
const INTERVAL_S = option('interval', 10);

// ---------------------------------------------------------------------------
// Deterministic answers, random faults.

let seed = 0x50a4;
function random() {
  // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const pick = (items) => items[Math.floor(random() * items.length)];

function answer(id) {
  return `soak ${id}:${Array.from({ length: 3 + (id % 20) }, (_, i) => ` t${i}`).join('')}`;
}

function pieces(text) {
  const out = [];
  for (let i = 0; i < text.length; i += 4) out.push(text.slice(i, i + 4));
  return out;
}

const chunk = (delta, finish = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-soak', object: 'chat.completion.chunk', created: 1700000000, model: 'soak', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const completion = (content) =>
  JSON.stringify({
    id: 'chatcmpl-soak',
    object: 'chat.completion',
    created: 1700000000,
    model: 'soak',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
  });

/** The healthy answer as an SSE stream or one JSON body. */
async function healthy(res, id, stream) {
  if (!stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(completion(answer(id)));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(chunk({ role: 'assistant', content: '' }));
  for (const p of pieces(answer(id))) {
    if (res.destroyed) return;
    res.write(chunk({ content: p }));
    if (random() < 0.1) await sleep(2);
  }
  res.end(chunk({}, 'stop') + 'data: [DONE]\n\n');
}

const html = '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>';

/** Every way an upstream fails without cooling itself down for minutes. */
const FAULTS = {
  reset: (req) => req.socket.destroy(),
  hang: () => {},
  500: (_req, res) => json(res, 500, { error: { message: 'internal error' } }),
  502: (_req, res) => text(res, 502, html, 'text/html'),
  503: (_req, res) => json(res, 503, { detail: 'overloaded' }),
  400: (_req, res) => json(res, 400, { error: { message: 'bad request' } }),
  '200 error': (_req, res) => json(res, 200, { error: { message: 'Provider returned error', code: 502 } }),
  '200 html': (_req, res) => text(res, 200, html, 'text/html'),
  '200 empty': (_req, res) => text(res, 200, '', 'application/json'),
  '200 no choices': (_req, res) => json(res, 200, { id: 'x', choices: [] }),
  'comments only': (_req, res) => sse(res, [': OPENROUTER PROCESSING\n\n', ': OPENROUTER PROCESSING\n\n'], 'close'),
  'comments then hang': (_req, res) => sse(res, [': OPENROUTER PROCESSING\n\n'], 'hang'),
  'error event': (_req, res) =>
    sse(res, [`data: ${JSON.stringify({ error: { message: 'overloaded' } })}\n\n`], 'close'),
  'malformed chunk': (_req, res) => sse(res, ['data: {"choices": [{"delta": {"content": "x"\n\n'], 'close'),
  // The first half of the right answer, then the stream breaks: resumed for streaming clients.
  'cut mid-answer': (req, res, id) => {
    const all = pieces(answer(id));
    const head = [
      chunk({ role: 'assistant', content: '' }),
      ...all.slice(0, Math.ceil(all.length / 2)).map((p) => chunk({ content: p })),
    ];
    return sse(res, head, pick(['reset', 'close', 'hang']), req);
  },
};
const FAULT_NAMES = Object.keys(FAULTS);

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function text(res, status, body, type) {
  res.writeHead(status, { 'content-type': type });
  res.end(body);
}

function sse(res, events, end, req) {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const e of events) res.write(e);
  if (end === 'close') res.end();
  else if (end === 'reset') setTimeout(() => req?.socket.resetAndDestroy(), 10);
}

function startUpstream(name, faultRate) {
  const sockets = new Set();
  const faults = new Map();
  const server = createServer((req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      let body = {};
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        // The proxy always sends JSON; a fault answer is fine anyway.
      }
      const id = Number(body.soak_id ?? -1);
      if (random() >= faultRate) return void healthy(res, id, body.stream === true);
      const fault = pick(FAULT_NAMES);
      faults.set(fault, (faults.get(fault) ?? 0) + 1);
      FAULTS[fault](req, res, id);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        name,
        baseurl: `http://127.0.0.1:${server.address().port}/v1`,
        sockets: () => sockets.size,
        faults,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    ),
  );
}

// ---------------------------------------------------------------------------
// The proxy.

async function startProxy(upstreams) {
  const profiles = mkdtempSync(path.join(tmpdir(), 'failproxy-soak-profiles-'));
  const logs = mkdtempSync(path.join(tmpdir(), 'failproxy-soak-logs-'));
  const [a, b, c] = upstreams;
  writeFileSync(
    path.join(profiles, 'soak.json'),
    JSON.stringify({
      cooldown: { failures: 1_000_000, seconds: 1 },
      endpoints: [
        { name: 'flaky-a', baseurl: a.baseurl, apikey: '', model: 'm', timeout: 0.5 },
        { name: 'flaky-b', baseurl: b.baseurl, apikey: '', model: 'm', timeout: 0.5, stream: true },
        { name: 'healthy', baseurl: c.baseurl, apikey: '', model: 'm', timeout: 10 },
      ],
    }),
  );
  const child = spawn(
    process.execPath,
    [path.join(ROOT, 'bin', 'failproxy.js'), 'serve', '--profiles', profiles, '--port', '0', '--log-dir', logs],
    {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\/v1/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`serve exited (${code}) before listening:\n${stderr}`)));
  });
  return {
    child,
    port,
    stderr: () => stderr,
    cleanup: () => [profiles, logs].forEach((d) => rmSync(d, { recursive: true, force: true })),
  };
}

/** VmRSS of `pid` in kB, or null. */
function rssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function openFds(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Traffic.

const stats = { ok: 0, failed: 0, hungUp: 0, hostile: 0, hostileBad: 0, failures: new Map() };

function fail(why) {
  stats.failed += 1;
  const key = why.slice(0, 120);
  stats.failures.set(key, (stats.failures.get(key) ?? 0) + 1);
}

function contentOf(text, stream) {
  if (!stream) return JSON.parse(text).choices?.[0]?.message?.content ?? null;
  const events = text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
  if (events.at(-1) !== '[DONE]') return { broken: events.at(-1)?.slice(0, 200) ?? 'no events' };
  let content = '';
  for (const data of events.slice(0, -1)) content += JSON.parse(data).choices?.[0]?.delta?.content ?? '';
  return content;
}

async function oneRequest(origin, dispatcher, id) {
  const roll = random();
  const url = `${origin}/v1/chat/completions`;
  if (roll < 0.05) {
    // Malformed or unknown: must be a 4xx.
    const body = pick([
      '{"model": "soak", "messages": [',
      'not json',
      '{"model": "nope", "messages": [{"role": "user", "content": "x"}]}',
      '[]',
      '{"model": 5}',
    ]);
    const res = await request(url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body,
    });
    await res.body.text();
    stats.hostile += 1;
    if (res.statusCode < 400 || res.statusCode > 499) stats.hostileBad += 1;
    return;
  }
  const stream = roll < 0.55;
  const body = JSON.stringify({ model: 'soak', stream, messages: [{ role: 'user', content: `q${id}` }], soak_id: id });
  if (stream && roll < 0.1) {
    // A client that hangs up after the first bytes.
    const controller = new AbortController();
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body,
        signal: controller.signal,
      });
      res.body.on('error', () => {});
      await new Promise((resolve) => {
        res.body.once('data', resolve);
        res.body.once('end', resolve);
      });
      controller.abort();
    } catch {
      // The abort itself.
    }
    stats.hungUp += 1;
    return;
  }
  const res = await request(url, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body });
  const text = await res.body.text();
  if (res.statusCode !== 200) return fail(`status ${res.statusCode}: ${text.slice(0, 100)}`);
  const content = contentOf(text, stream);
  if (content === answer(id)) stats.ok += 1;
  else fail(`${stream ? 'stream' : 'json'}: ${JSON.stringify(content).slice(0, 100)}`);
}

// ---------------------------------------------------------------------------

async function main() {
  const upstreams = await Promise.all([
    startUpstream('flaky-a', 0.8),
    startUpstream('flaky-b', 0.8),
    startUpstream('healthy', 0),
  ]);
  const proxy = await startProxy(upstreams);
  const pid = proxy.child.pid;
  const origin = `http://127.0.0.1:${proxy.port}`;
  const dispatcher = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  const started = Date.now();
  const until = started + MINUTES * 60_000;
  let nextId = 0;
  let clientErrors = 0;
  const samples = [];

  console.log(`soak: ${MINUTES} min, concurrency ${CONCURRENCY}, proxy pid ${pid} on ${origin}`);
  let lastTotal = 0;
  let lastAt = started;
  const report = () => {
    const total = stats.ok + stats.failed + stats.hungUp + stats.hostile;
    const answered = stats.ok + stats.failed;
    const sample = {
      s: Math.round((Date.now() - started) / 1000),
      rssMb: (rssKb(pid) ?? 0) / 1024,
      fds: openFds(pid),
      upstreamSockets: upstreams.reduce((n, u) => n + u.sockets(), 0),
    };
    samples.push(sample);
    const rate = answered === 0 ? 100 : (100 * stats.ok) / answered;
    console.log(
      `[${String(sample.s).padStart(5)} s] requests ${total} (+${total - lastTotal}, ${((1000 * (total - lastTotal)) / Math.max(1, Date.now() - lastAt)).toFixed(0)}/s)  ` +
        `success ${rate.toFixed(3)}% (${stats.failed} failed)  hung up ${stats.hungUp}  4xx ${stats.hostile - stats.hostileBad}/${stats.hostile}  ` +
        `proxy rss ${sample.rssMb.toFixed(1)} MB  fds ${sample.fds}  upstream sockets ${sample.upstreamSockets}`,
    );
    lastTotal = total;
    lastAt = Date.now();
  };
  const timer = setInterval(report, INTERVAL_S * 1000);

  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < until) {
        const id = nextId++;
        try {
          await oneRequest(origin, dispatcher, id);
        } catch (err) {
          clientErrors += 1;
          fail(`client error: ${err?.code ?? err?.message ?? err}`);
        }
      }
    }),
  );
  clearInterval(timer);
  report();
  await dispatcher.close();

  proxy.child.kill('SIGTERM');
  const [code] = await new Promise((resolve) => proxy.child.once('exit', (...args) => resolve(args)));
  await Promise.all(upstreams.map((u) => u.close()));
  proxy.cleanup();

  const rss = samples.map((s) => s.rssMb);
  const fds = samples.map((s) => s.fds ?? 0);
  const answered = stats.ok + stats.failed;
  console.log('\nsummary');
  console.log(
    `  requests answered ${answered}: ${stats.ok} complete, ${stats.failed} failed (${((100 * stats.ok) / Math.max(1, answered)).toFixed(3)}% success)`,
  );
  console.log(
    `  clients that hung up ${stats.hungUp}; malformed requests ${stats.hostile} (${stats.hostileBad} without a 4xx); client errors ${clientErrors}`,
  );
  console.log(
    `  proxy rss first ${rss[0]?.toFixed(1)} MB, last ${rss.at(-1)?.toFixed(1)} MB, max ${Math.max(...rss).toFixed(1)} MB`,
  );
  console.log(`  proxy fds first ${fds[0]}, last ${fds.at(-1)}, max ${Math.max(...fds)}`);
  console.log(`  faults served: ${[...upstreams[0].faults, ...upstreams[1].faults].reduce((n, [, k]) => n + k, 0)}`);
  console.log(`  serve exited with ${code} after SIGTERM`);
  for (const [why, n] of stats.failures) console.log(`  failure ×${n}: ${why}`);
  if (stats.failed > 0 || stats.hostileBad > 0 || code !== 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
