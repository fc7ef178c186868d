/**
 * `--demo`: a `demo` group served by built-in upstreams on loopback, so a
 * newcomer without any key sees every failover path in seconds (SPEC §1).
 * One endpoint is a closed port (refused), one fails in rotation (429, 503,
 * a 200 carrying an error, a stream cut after a few tokens), and one answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Endpoint, Group } from '../core/types.js';

export interface DemoUpstreams {
  group: Group;
  close(): Promise<void>;
}

const ANSWER =
  'Hello from the FailProxy demo. The endpoints before me failed on purpose, ' +
  'and you only see this answer because the proxy switched to the next one.';

export async function startDemoUpstreams(): Promise<DemoUpstreams> {
  let flakyTurn = 0;
  const flaky = await listen((req, res, body) => {
    const turn = flakyTurn++ % 4;
    if (turn === 0) return json(res, 429, { error: { message: 'demo: rate limit exceeded', type: 'rate_limit', code: 429 } }, { 'retry-after': '0' });
    if (turn === 1) return json(res, 503, { detail: "No instances available (yet) for chute_id='demo'" });
    if (turn === 2) return json(res, 200, { error: { message: 'demo: provider returned error', code: 502 } });
    // A stream that dies after a few tokens (a non-streaming client never sees it).
    const words = ANSWER.split(/(?= )/).slice(0, 4);
    streamWords(req, res, body, words, true);
  });
  const steady = await listen((req, res, body) => {
    if (body.stream === true) return streamWords(req, res, body, ANSWER.split(/(?= )/), false);
    json(res, 200, {
      id: `chatcmpl-demo-${Date.now()}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: 'demo-steady',
      choices: [{ index: 0, message: { role: 'assistant', content: ANSWER }, finish_reason: 'stop' }],
      usage: usage(),
    });
  });
  const refusedPort = await closedPort();

  const endpoint = (name: string, port: number, extra: Partial<Endpoint> = {}): Endpoint => ({
    name,
    type: 'openai',
    baseurl: `http://127.0.0.1:${port}/v1`,
    apikey: '',
    model: name,
    timeoutMs: 5_000,
    headers: {},
    params: {},
    ...extra,
  });
  const group: Group = {
    name: 'demo',
    source: '(built-in demo)',
    endpoints: [
      endpoint('demo-down', refusedPort),
      endpoint('demo-flaky', portOf(flaky), { stream: true }),
      endpoint('demo-steady', portOf(steady)),
    ],
    skipped: [],
    reasoning: 'field',
    // Never cool the demo endpoints: every request shows the whole chain.
    cooldown: { failures: Number.MAX_SAFE_INTEGER, seconds: 1 },
  };
  return {
    group,
    close: async () => {
      await Promise.all([flaky, steady].map((s) => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); })));
    },
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>) => void;

async function listen(handler: Handler): Promise<Server> {
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
      } catch {
        // Answer anyway: the demo is about upstream failures, not request validation.
      }
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const server = await listen(() => undefined);
  const port = portOf(server);
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function usage() {
  return { prompt_tokens: 12, completion_tokens: 28, total_tokens: 40 };
}

function streamWords(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>, words: string[], cut: boolean): void {
  const id = `chatcmpl-demo-${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = cut ? 'demo-flaky' : 'demo-steady';
  const chunk = (delta: object, finish: string | null = null): string =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(': demo keep-alive\n\n');
  res.write(chunk({ role: 'assistant', content: '' }));
  let i = 0;
  const timer = setInterval(() => {
    if (res.destroyed) return clearInterval(timer);
    if (i < words.length) {
      res.write(chunk({ content: words[i++] }));
      return;
    }
    clearInterval(timer);
    if (cut) {
      req.socket.destroy();
      return;
    }
    res.write(chunk({}, 'stop'));
    const wantsUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    if (wantsUsage) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: usage() })}\n\n`);
    res.end('data: [DONE]\n\n');
  }, 30);
}
