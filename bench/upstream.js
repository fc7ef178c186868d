// A fast fake OpenAI-compatible upstream: raw HTTP/1.1 over node:net with
// pre-built responses, so the load generator's core spends its time on the
// proxy's answers rather than on node:http machinery. One port per behaviour:
//   json      one chat.completion (content-length)
//   sse       N chat.completion.chunk events `gapMs` apart, then [DONE] (chunked)
//   fail500   HTTP 500 with an OpenAI error body
//   refused   a port nobody listens on (bound, then closed)
// Request bodies are not parsed: the behaviour is the port's.
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers';
import { fileURLToPath } from 'node:url';

const CREATED = 1700000000;
const CRLF2 = Buffer.from('\r\n\r\n');

export function completionJson(tokens = 20) {
  const content = Array.from({ length: tokens }, (_, i) => `tok${i}`).join(' ');
  return JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: CREATED,
    model: 'bench-model',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 8, completion_tokens: tokens, total_tokens: 8 + tokens },
  });
}

function chunkJson(i, n) {
  const delta = i === 0 ? { role: 'assistant', content: 'tok0' } : { content: ` tok${i}` };
  return JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: CREATED,
    model: 'bench-model',
    choices: [{ index: 0, delta, finish_reason: i === n - 1 ? 'stop' : null }],
  });
}

function fixedResponse(status, reason, body) {
  const bytes = Buffer.from(body);
  return Buffer.concat([
    Buffer.from(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${bytes.length}\r\nconnection: keep-alive\r\n\r\n`,
    ),
    bytes,
  ]);
}

function httpChunk(text) {
  const bytes = Buffer.from(text);
  return Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]);
}

/** Pre-built wire pieces of an SSE answer: head + first event, the middle events, then [DONE] + terminator. */
function sseParts(chunks) {
  const head = Buffer.from(
    'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n',
  );
  const events = Array.from({ length: chunks }, (_, i) => httpChunk(`data: ${chunkJson(i, chunks)}\n\n`));
  const tail = Buffer.concat([httpChunk('data: [DONE]\n\n'), Buffer.from('0\r\n\r\n')]);
  return { first: Buffer.concat([head, events[0]]), rest: events.slice(1), tail };
}

/** Where the request that starts at 0 ends, or -1 when more bytes are needed. */
function requestEnd(buf) {
  const headEnd = buf.indexOf(CRLF2);
  if (headEnd === -1) return -1;
  const head = buf.toString('latin1', 0, headEnd).toLowerCase();
  const bodyStart = headEnd + 4;
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (cl) {
    const end = bodyStart + Number(cl[1]);
    return buf.length >= end ? end : -1;
  }
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) {
    // Small JSON bodies never contain the terminator sequence themselves.
    const term = buf.indexOf('0\r\n\r\n', bodyStart);
    if (term === -1) return -1;
    return term + 5;
  }
  return bodyStart;
}

/**
 * Serve one behaviour on a port. `respond(socket, done)` writes one response
 * and calls `done` when it is complete (the next pipelined request waits).
 */
function serveRaw(respond) {
  const sockets = new Set();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let pending = Buffer.alloc(0);
    let busy = false;
    let closed = false;
    const pump = () => {
      while (!busy && !closed) {
        const end = requestEnd(pending);
        if (end === -1) return;
        pending = pending.subarray(end);
        busy = true;
        respond(
          socket,
          () => {
            busy = false;
            pump();
          },
          () => closed,
        );
      }
    };
    socket.on('data', (data) => {
      pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
      pump();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      sockets.delete(socket);
    });
  });
  return {
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server.address().port));
      }),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function jsonBehaviour(tokens) {
  const wire = fixedResponse(200, 'OK', completionJson(tokens));
  return (socket, done) => {
    socket.write(wire);
    done();
  };
}

function failBehaviour() {
  const wire = fixedResponse(
    500,
    'Internal Server Error',
    JSON.stringify({ error: { message: 'bench: upstream always fails', type: 'server_error', code: null } }),
  );
  return (socket, done) => {
    socket.write(wire);
    done();
  };
}

function sseBehaviour(chunks, gapMs) {
  const { first, rest, tail } = sseParts(chunks);
  if (gapMs <= 0) {
    // Back to back: one write per event, no waiting in between.
    return (socket, done) => {
      socket.write(first);
      for (const part of rest) socket.write(part);
      socket.write(tail);
      done();
    };
  }
  return (socket, done, isClosed) => {
    socket.write(first);
    let i = 0;
    const next = () => {
      if (isClosed()) return;
      if (i < rest.length) {
        socket.write(rest[i++]);
        delay(next, gapMs);
      } else {
        socket.write(tail);
        done();
      }
    };
    delay(next, gapMs);
  };
}

async function refusedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Start every behaviour the benchmark needs. Returns `{ ports, close }` where
 * ports = { json, sse20, sse20slow, sse100slow, fail500, refused }.
 */
export async function startUpstreams() {
  const specs = {
    json: jsonBehaviour(20),
    sse20: sseBehaviour(20, 0),
    sse20slow: sseBehaviour(20, 10),
    sse100slow: sseBehaviour(100, 50),
    fail500: failBehaviour(),
  };
  const servers = [];
  const ports = {};
  for (const [name, behaviour] of Object.entries(specs)) {
    const server = serveRaw(behaviour);
    ports[name] = await server.listen();
    servers.push(server);
  }
  ports.refused = await refusedPort();
  return { ports, close: () => Promise.all(servers.map((s) => s.close())) };
}

// `node bench/upstream.js`: run the upstreams alone (for manual profiling).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { ports } = await startUpstreams();
  process.stdout.write(`${JSON.stringify(ports)}\n`);
}
