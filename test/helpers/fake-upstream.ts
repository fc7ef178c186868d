/**
 * Fake OpenAI-compatible upstreams on 127.0.0.1 (port 0) that misbehave on
 * purpose. Each server answers with a scripted behaviour, chosen per request
 * (so "fail once, then answer" is one function), and records what it got.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type SseItem =
  /** `data: <JSON>` */
  | { data: unknown }
  /** `: comment` */
  | { comment: string }
  /** Written as is (bare lines, broken framing, CRLF…). */
  | { raw: string }
  /** Written as is, in one write (e.g. half of a UTF-8 character). */
  | { bytes: Buffer }
  /** Pause before the next item. */
  | { wait: number };

export type Behaviour =
  | { kind: 'json'; status?: number; body: unknown; headers?: Record<string, string>; delayMs?: number }
  | { kind: 'text'; status: number; body: string; contentType?: string; headers?: Record<string, string> }
  | {
      kind: 'sse';
      items: SseItem[];
      status?: number;
      /** Delay between items (ms). */
      gapMs?: number;
      /** How the stream ends: normally (default), a TCP reset, or never. */
      end?: 'close' | 'reset' | 'hang';
      /** Append `data: [DONE]` (default true). */
      done?: boolean;
      /** Write the head before anything else (default true). */
      flushHeaders?: boolean;
    }
  /** Accept the connection, never answer. */
  | { kind: 'hang' }
  /** Destroy the socket on arrival. */
  | { kind: 'reset' };

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface FakeUpstream {
  /** `http://127.0.0.1:PORT/v1` */
  baseurl: string;
  port: number;
  requests: ReceivedRequest[];
  /** Requests whose connection the client (the proxy) closed before the response ended. */
  aborted: number;
  openSockets(): number;
  setBehaviour(next: Behaviour | ((n: number, req: ReceivedRequest) => Behaviour)): void;
  close(): Promise<void>;
}

export async function startFakeUpstream(
  behaviour: Behaviour | ((n: number, req: ReceivedRequest) => Behaviour),
  /** A given port: a server (re)started where one was down. */
  listenPort = 0,
): Promise<FakeUpstream> {
  let pick = typeof behaviour === 'function' ? behaviour : () => behaviour;
  const sockets = new Set<Socket>();
  const requests: ReceivedRequest[] = [];
  const state = { aborted: 0 };
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
      } catch {
        body = {};
      }
      const received: ReceivedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      requests.push(received);
      res.on('close', () => {
        if (!res.writableFinished) state.aborted += 1;
      });
      void respond(pick(requests.length, received), req, res);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    baseurl: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    get aborted() {
      return state.aborted;
    },
    openSockets: () => sockets.size,
    setBehaviour(next) {
      pick = typeof next === 'function' ? next : () => next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function respond(behaviour: Behaviour, req: IncomingMessage, res: ServerResponse): Promise<void> {
  switch (behaviour.kind) {
    case 'hang':
      return;
    case 'reset':
      req.socket.destroy();
      return;
    case 'json': {
      if (behaviour.delayMs) await sleep(behaviour.delayMs);
      if (res.destroyed) return;
      res.writeHead(behaviour.status ?? 200, { 'content-type': 'application/json', ...behaviour.headers });
      res.end(JSON.stringify(behaviour.body));
      return;
    }
    case 'text':
      res.writeHead(behaviour.status, { 'content-type': behaviour.contentType ?? 'text/plain', ...behaviour.headers });
      res.end(behaviour.body);
      return;
    case 'sse': {
      res.writeHead(behaviour.status ?? 200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (behaviour.flushHeaders !== false) res.flushHeaders();
      for (const item of behaviour.items) {
        if (res.destroyed) return;
        if (behaviour.gapMs) await sleep(behaviour.gapMs);
        if ('wait' in item) await sleep(item.wait);
        else if ('data' in item) res.write(`data: ${JSON.stringify(item.data)}\n\n`);
        else if ('comment' in item) res.write(`: ${item.comment}\n\n`);
        else if ('bytes' in item) res.write(item.bytes);
        else res.write(item.raw);
      }
      if (res.destroyed) return;
      const end = behaviour.end ?? 'close';
      if (end === 'reset') {
        // Let the written bytes leave before the reset.
        await sleep(20);
        req.socket.resetAndDestroy();
        return;
      }
      if (end === 'hang') return;
      if (behaviour.done !== false) res.write('data: [DONE]\n\n');
      res.end();
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// Payload builders.

export function completionBody(content: string | null, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const { message, finish_reason, usage, ...rest } = extra;
  return {
    id: 'chatcmpl-upstream',
    object: 'chat.completion',
    created: 1700000000,
    model: 'upstream-model',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, ...(message as object | undefined) },
        finish_reason: finish_reason ?? 'stop',
      },
    ],
    usage: usage ?? { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
    ...rest,
  };
}

export function chunk(delta: Record<string, unknown>, finish: string | null = null): { data: unknown } {
  return {
    data: {
      id: 'chatcmpl-upstream',
      object: 'chat.completion.chunk',
      created: 1700000000,
      model: 'upstream-model',
      choices: [{ index: 0, delta, finish_reason: finish }],
    },
  };
}

export function usageChunk(usage = { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 }): { data: unknown } {
  return {
    data: { id: 'chatcmpl-upstream', object: 'chat.completion.chunk', created: 1700000000, model: 'upstream-model', choices: [], usage },
  };
}

/** A well-formed stream of `words` as content deltas, with a finish and a usage chunk. */
export function wordStream(words: string[], finish = 'stop'): SseItem[] {
  return [
    chunk({ role: 'assistant', content: '' }),
    ...words.map((w) => chunk({ content: w })),
    chunk({}, finish),
    usageChunk(),
  ];
}

export function sse(items: SseItem[], options: Partial<Extract<Behaviour, { kind: 'sse' }>> = {}): Behaviour {
  return { kind: 'sse', items, ...options };
}

export function json(body: unknown, status = 200, headers?: Record<string, string>): Behaviour {
  return headers ? { kind: 'json', status, body, headers } : { kind: 'json', status, body };
}
