// A small closed-loop HTTP load generator on undici's Pool: `concurrency`
// workers, each sending its next request as soon as the previous answer has
// fully arrived. Records time to first body byte (TTFB) and to last byte for
// every request that completes inside the measurement window.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';

const DONE_MARK = Buffer.from('data: [DONE]');

function pool(port, connections) {
  return new Pool(`http://127.0.0.1:${port}`, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}

/**
 * One request through undici's low-level handler API (no body stream, no header
 * parsing). Resolves `{ ok, ttfb, total, start, end }` in ms; `ok` means 200 and,
 * for a stream, a body ending with `data: [DONE]`.
 */
function send(client, options, expectStream) {
  return new Promise((resolve) => {
    const start = performance.now();
    let status = 0;
    let ttfb = -1;
    let previous = null;
    let last = null;
    client.dispatch(options, {
      onConnect() {},
      onHeaders(statusCode) {
        status = statusCode;
        return true;
      },
      onData(chunk) {
        if (ttfb < 0) ttfb = performance.now() - start;
        previous = last;
        last = chunk;
        return true;
      },
      onComplete() {
        const end = performance.now();
        let ok = status === 200 && last !== null;
        if (ok && expectStream) {
          const tail = previous ? Buffer.concat([previous.subarray(-32), last]) : last;
          ok = tail.includes(DONE_MARK);
        }
        resolve({ ok, status, ttfb, total: end - start, start, end });
      },
      onError(err) {
        const end = performance.now();
        resolve({
          ok: false,
          status,
          error: err?.code ?? err?.message ?? String(err),
          ttfb,
          total: end - start,
          start,
          end,
        });
      },
    });
  });
}

function requestOptions(body, upstreamPort) {
  const bytes = Buffer.from(JSON.stringify(body));
  return {
    path: '/v1/chat/completions',
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'content-length': String(bytes.length),
      // Read by the bare pass-through to pick its upstream; FailProxy ignores it.
      'x-upstream-port': String(upstreamPort),
    },
    body: bytes,
  };
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function summarize(samples, windowMs) {
  const ok = samples.filter((s) => s.ok);
  const total = ok.map((s) => s.total).sort((a, b) => a - b);
  const ttfb = ok.map((s) => s.ttfb).sort((a, b) => a - b);
  const errors = {};
  for (const s of samples)
    if (!s.ok) errors[s.error ?? `status ${s.status}`] = (errors[s.error ?? `status ${s.status}`] ?? 0) + 1;
  return {
    completed: ok.length,
    failed: samples.length - ok.length,
    errors,
    windowMs,
    perSecond: (ok.length * 1000) / windowMs,
    p50Ms: percentile(total, 50),
    p99Ms: percentile(total, 99),
    ttfbP50Ms: percentile(ttfb, 50),
    ttfbP99Ms: percentile(ttfb, 99),
  };
}

/**
 * Closed loop for `warmupMs`, then a measured window of `durationMs`.
 * `onWindow('start' | 'end')` runs synchronously at the window's edges (the
 * caller snapshots the proxy's CPU time there). `expectStream`: the answer must
 * be an event stream ending in `data: [DONE]` (default: what the body asks).
 */
export async function closedLoop({
  port,
  upstreamPort,
  body,
  expectStream = body.stream === true,
  concurrency,
  warmupMs,
  durationMs,
  onWindow = () => {},
}) {
  const client = pool(port, concurrency);
  const options = requestOptions(body, upstreamPort);
  const samples = [];
  let windowStart = Infinity;
  let windowEnd = Infinity;
  let stopping = false;

  const worker = async () => {
    while (!stopping) {
      const result = await send(client, options, expectStream);
      if (result.end >= windowStart && result.end <= windowEnd) samples.push(result);
      // A failing target must not spin: back off a little on errors.
      if (!result.ok) await sleep(5);
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await sleep(warmupMs);
  windowStart = performance.now();
  onWindow('start');
  await sleep(durationMs);
  windowEnd = performance.now();
  onWindow('end');
  stopping = true;
  await Promise.all(workers);
  await client.destroy();
  return summarize(samples, windowEnd - windowStart);
}

/**
 * Open `count` requests at once and wait for all of them (the slow-stream
 * memory test). `onWindow` brackets the whole batch.
 */
export async function holdOpen({
  port,
  upstreamPort,
  body,
  expectStream = body.stream === true,
  count,
  onWindow = () => {},
}) {
  const client = pool(port, count);
  const options = requestOptions(body, upstreamPort);
  const started = performance.now();
  onWindow('start');
  const samples = await Promise.all(Array.from({ length: count }, () => send(client, options, expectStream)));
  const ended = performance.now();
  onWindow('end');
  await client.destroy();
  return summarize(samples, ended - started);
}
