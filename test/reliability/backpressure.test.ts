/**
 * Backpressure: a client that reads a fast stream slowly (or not at all) must
 * not make the proxy buffer the upstream's whole answer. The server awaits
 * 'drain' and the engine is an async generator pulling from undici's body, so
 * the upstream should be paused by TCP flow control instead.
 *
 * The memory figures come from a spawned `failproxy serve` (its own RSS, read
 * from /proc), so the fake upstream and the clients in this process do not
 * count. Run `npm run build` first (`npm test` does).
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FailoverEngine } from '../../src/core/engine.js';
import { createProxyServer } from '../../src/server/app.js';
import { GroupRegistry } from '../../src/server/registry.js';
import { completionBody } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { startCli, waitForStdout } from '../helpers/cli.js';
import { startProxy } from '../helpers/proxy.js';

const MB = 2 ** 20;
const PIECE_CONTENT = 'x'.repeat(8 * 1024);
const ROLE = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] })}\n\n`;
const PIECE = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: PIECE_CONTENT }, finish_reason: null }] })}\n\n`;
const FINISH = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`;

interface Blast {
  /** Bytes each response has handed to `res.write` so far. */
  written: number[];
  /** Responses whose connection closed before the end (the proxy aborted them). */
  aborted: number;
  finished: number;
}

/**
 * An upstream that streams `bytesPerResponse` of SSE as fast as TCP lets it:
 * it writes until `res.write` returns false, then waits for 'drain'.
 */
async function startBlaster(bytesPerResponse: number): Promise<{ server: Server; baseurl: string; stats: Blast }> {
  const stats: Blast = { written: [], aborted: 0, finished: 0 };
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => void blast(res, bytesPerResponse, stats));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, baseurl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, stats };
}

async function blast(res: ServerResponse, total: number, stats: Blast): Promise<void> {
  const slot = stats.written.push(0) - 1;
  let closed = false;
  res.on('close', () => {
    closed = true;
    if (!res.writableFinished) stats.aborted += 1;
  });
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(ROLE);
  while (stats.written[slot]! < total && !closed) {
    const ok = res.write(PIECE);
    stats.written[slot]! += PIECE.length;
    if (!ok) await drainOrClose(res);
  }
  if (closed) return;
  res.end(FINISH);
  stats.finished += 1;
}

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until `value()` stops growing for `quietMs` (or `limitMs` passes). */
async function plateau(value: () => number, quietMs: number, limitMs: number): Promise<number> {
  const deadline = Date.now() + limitMs;
  let last = value();
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(50);
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      break;
    }
  }
  return last;
}

const REQUEST = (model: string): string => {
  const body = JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'go' }] });
  return `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
};

/** A raw client: sends the request, then reads only when told to. */
function rawClient(port: number, model: string): { socket: Socket; received: () => number } {
  const socket = connect(port, '127.0.0.1');
  let received = 0;
  socket.on('data', (d: Buffer) => void (received += d.length));
  socket.on('error', () => {});
  socket.write(REQUEST(model));
  return { socket, received: () => received };
}

describe('backpressure through the built server', () => {
  let big: Awaited<ReturnType<typeof startBlaster>>;
  let many: Awaited<ReturnType<typeof startBlaster>>;
  let child: ChildProcessWithoutNullStreams;
  let port: number;

  before(async () => {
    big = await startBlaster(50 * MB);
    many = await startBlaster(4 * MB);
    const profiles = await mkdtemp(path.join(tmpdir(), 'failproxy-bp-profiles-'));
    const logs = await mkdtemp(path.join(tmpdir(), 'failproxy-bp-logs-'));
    const profile = (baseurl: string): string =>
      JSON.stringify([{ name: 'blaster', baseurl, apikey: '', model: 'm', timeout: 60 }]);
    await writeFile(path.join(profiles, 'big.json'), profile(big.baseurl));
    await writeFile(path.join(profiles, 'many.json'), profile(many.baseurl));
    child = startCli(['serve', '--profiles', profiles, '--port', '0', '--log-dir', logs]);
    child.stderr.resume();
    const [, p] = await waitForStdout(child, /listening on http:\/\/127\.0\.0\.1:(\d+)\/v1/);
    port = Number(p);
  });

  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    big?.server.closeAllConnections();
    many?.server.closeAllConnections();
    await Promise.all([
      big && new Promise((r) => big.server.close(r)),
      many && new Promise((r) => many.server.close(r)),
    ]);
  });

  it('pauses a 50 MB upstream stream when the client does not read', async (t) => {
    const baseline = rssMb(child.pid!);
    const client = rawClient(port, 'big');
    client.socket.once('data', () => client.socket.pause());
    const written = await plateau(() => big.stats.written[0] ?? 0, 750, 10_000);
    const rss = rssMb(child.pid!);
    t.diagnostic(
      `upstream wrote ${(written / MB).toFixed(1)} MB of 50 MB before it was paused; proxy RSS ${baseline.toFixed(0)} -> ${rss.toFixed(0)} MB`,
    );
    // Kernel socket buffers on both hops hold several MB; the proxy itself holds little.
    assert.ok(written < 25 * MB, `upstream wrote ${(written / MB).toFixed(1)} MB`);
    assert.ok(rss - baseline < 64, `proxy RSS grew ${(rss - baseline).toFixed(0)} MB`);
    assert.equal(big.stats.finished, 0);

    // The client leaves: the upstream request is aborted at once (SPEC §3.10).
    client.socket.destroy();
    assert.equal(await plateau(() => big.stats.aborted, 300, 5_000), 1);
  });

  it('serves 200 slow readers without buffering their streams', async (t) => {
    const CLIENTS = 200;
    const baseline = rssMb(child.pid!);
    const clients = Array.from({ length: CLIENTS }, () => rawClient(port, 'many'));
    // Each reads what has arrived, then nothing for a second: tens of KB/s each.
    for (const c of clients) {
      c.socket.on('data', () => {
        c.socket.pause();
        setTimeout(() => c.socket.resume(), 1_000).unref();
      });
    }
    let peak = baseline;
    const sample = (): void => void (peak = Math.max(peak, rssMb(child.pid!)));
    const sampler = setInterval(sample, 100);
    const deadline = Date.now() + 30_000;
    while (many.stats.written.length < CLIENTS && Date.now() < deadline) await sleep(50);
    // Every stream is open and its client is behind: hold that state a moment.
    await sleep(1_000);
    clearInterval(sampler);
    sample();
    const upstreamTotal = many.stats.written.reduce((a, b) => a + b, 0);
    const readTotal = clients.reduce((a, c) => a + c.received(), 0);
    t.diagnostic(
      `${CLIENTS} slow readers: proxy RSS ${baseline.toFixed(0)} -> peak ${peak.toFixed(0)} MB; upstream wrote ${(upstreamTotal / MB).toFixed(0)} MB ` +
        `(${CLIENTS} streams of 4 MB; most of it sits in kernel socket buffers), clients read ${(readTotal / MB).toFixed(0)} MB`,
    );
    assert.equal(many.stats.written.length, CLIENTS, 'every stream reached the upstream');
    // Generous (a few hundred KB of buffers per stream); buffering what the upstream wrote would take gigabytes.
    assert.ok(peak - baseline < 400, `proxy RSS grew ${(peak - baseline).toFixed(0)} MB`);

    // The clients leave: every upstream connection is released.
    // The clients leave: every upstream response has ended (kernel buffers may have taken a whole stream) or is aborted.
    for (const c of clients) c.socket.destroy();
    const ended = await plateau(() => many.stats.aborted + many.stats.finished, 500, 10_000);
    assert.equal(ended, CLIENTS, `upstream responses still open: ${CLIENTS - ended}`);
  });
});

/** The body of a raw chunked HTTP/1.1 response. */
function dechunk(raw: Buffer): string {
  let at = raw.indexOf('\r\n\r\n') + 4;
  const parts: Buffer[] = [];
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    const size = parseInt(raw.subarray(at, eol).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts).toString('utf8');
}

describe('backpressure and the endpoint timeout', () => {
  it('a client that stops reading for longer than the timeout still gets the whole stream', async () => {
    // 4 MB at full speed, with a 500 ms timeout: the pause is the client's, not the upstream's silence.
    const upstream = await startBlaster(4 * MB);
    const proxy = await startProxy([group('g', [endpoint(upstream.baseurl, { name: 'blaster', timeoutMs: 500 })])]);
    try {
      const { port: proxyPort } = new URL(proxy.origin);
      const client = rawClient(Number(proxyPort), 'g');
      const chunks: Buffer[] = [];
      client.socket.on('data', (d: Buffer) => chunks.push(d));
      client.socket.once('data', () => {
        client.socket.pause();
        setTimeout(() => client.socket.resume(), 1_500);
      });
      // The response ends with the chunked terminator (the connection itself may be kept alive).
      await new Promise<void>((resolve, reject) => {
        client.socket.on('data', () => {
          const tail = chunks.at(-1)?.toString('latin1') ?? '';
          if (
            tail.endsWith('0\r\n\r\n') &&
            Buffer.concat(chunks.slice(-2)).toString('latin1').endsWith('\r\n0\r\n\r\n')
          )
            resolve();
        });
        client.socket.on('close', () => reject(new Error('closed before the end of the response')));
      });
      client.socket.destroy();
      const events = dechunk(Buffer.concat(chunks))
        .split('\n\n')
        .filter((e) => e !== '');
      const last = events.at(-1) ?? '';
      assert.equal(last, 'data: [DONE]', `the stream did not complete: ${events.at(-1)?.slice(0, 300)}`);
      let content = 0;
      for (const e of events.slice(0, -1)) {
        content += (
          (JSON.parse(e.slice('data: '.length)) as { choices: Array<{ delta: { content?: string } }> }).choices[0]
            ?.delta.content ?? ''
        ).length;
      }
      assert.equal(content, Math.ceil((4 * MB) / PIECE.length) * PIECE_CONTENT.length);
    } finally {
      await proxy.close();
      upstream.server.closeAllConnections();
      await new Promise((r) => upstream.server.close(r));
    }
  });
});

describe('a client that stops reading for good', () => {
  it('is dropped after the stall timeout, and its upstream request with it', async () => {
    const upstream = await startBlaster(50 * MB);
    const engine = new FailoverEngine();
    const proxy = createProxyServer({
      engine,
      groups: new GroupRegistry([group('g', [endpoint(upstream.baseurl, { name: 'blaster', timeoutMs: 30_000 })])]),
      clientStallTimeoutMs: 500,
    });
    proxy.server.listen(0, '127.0.0.1');
    await once(proxy.server, 'listening');
    try {
      const client = rawClient((proxy.server.address() as AddressInfo).port, 'g');
      client.socket.once('data', () => client.socket.pause());
      // A paused socket never sees its own close: watch the proxy and the upstream instead.
      const deadline = Date.now() + 10_000;
      while (upstream.stats.aborted === 0 && Date.now() < deadline) await sleep(50);
      assert.equal(upstream.stats.aborted, 1, 'the upstream request was aborted');
      assert.equal(upstream.stats.finished, 0);
      assert.equal(proxy.inFlight(), 0, 'the client was dropped');
      client.socket.destroy();
    } finally {
      await proxy.shutdown(100);
      await engine.close();
      upstream.server.closeAllConnections();
      await new Promise((r) => upstream.server.close(r));
    }
  });
});

describe('stale kept-alive upstream connections', () => {
  // Found by the slow-readers test: behind a slow client the proxy finishes
  // reading an answer long after the upstream wrote it, so the upstream's idle
  // timer closes the connection just as the proxy reuses it for the next request.
  it('a request on a connection the upstream closed is sent again on a fresh one', async () => {
    const body = JSON.stringify(completionBody('fresh'));
    const response = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: keep-alive\r\nkeep-alive: timeout=60\r\n\r\n${body}`;
    let connections = 0;
    // Answers the first request of each connection, closes it on the second without an answer.
    const server = createNetServer((socket) => {
      connections += 1;
      let served = 0;
      let buffered = '';
      socket.on('data', (d: Buffer) => {
        buffered += d.toString('latin1');
        for (;;) {
          const head = buffered.indexOf('\r\n\r\n');
          if (head === -1) return;
          const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, head))?.[1] ?? 0);
          if (buffered.length < head + 4 + length) return;
          buffered = buffered.slice(head + 4 + length);
          if (served++ > 0) {
            socket.end();
            return;
          }
          socket.write(response);
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const baseurl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const proxy = await startProxy([group('g', [endpoint(baseurl, { name: 'only' })])]);
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${proxy.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'g', messages: [{ role: 'user', content: 'hi' }] }),
        });
        assert.equal(res.status, 200, await res.clone().text());
        const answer = (await res.json()) as { choices: Array<{ message: { content: string } }> };
        assert.equal(answer.choices[0]?.message.content, 'fresh');
      }
      assert.equal(connections, 3);
    } finally {
      await proxy.close();
      server.close();
    }
  });
});
