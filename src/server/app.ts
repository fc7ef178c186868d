/**
 * The OpenAI-compatible HTTP face of the engine (SPEC §4): a node:http server
 * with a small route table. It parses and repairs requests, picks the group,
 * and pipes engine events to the client — SSE for streaming requests, one
 * JSON body otherwise.
 */
import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Cancellation } from '../core/cancellation.js';
import { EmbeddingsEngine } from '../core/embeddings/engine.js';
import { isEmbeddingsGroup } from '../core/embeddings/types.js';
import type { FailoverEngine } from '../core/engine.js';
import type { EngineObserver, RequestContext } from '../core/observe.js';
import type { EngineEvent } from '../core/types.js';
import { createAccessControl, sendPreflight, type Refusal } from './access.js';
import { ChunkEncoder } from './chunk-encoder.js';
import { serveEmbeddings } from './embeddings.js';
import { BodyTooLargeError, drained, readBody, sendError, sendJson, type Headers } from './http.js';
import { toTextCompletion, toTextCompletionChunk } from './legacy.js';
import { countTokens, messagesFrontDoor } from '../protocols/messages/index.js';
import type { ModelMapping } from '../protocols/model-map.js';
import { responsesFrontDoor } from '../protocols/responses/index.js';
import { serveChatWithEarlyStart } from './chat-early-start.js';
import { readJsonBody, sendReply, serveFrontDoor, type FrontDoorDeps } from './front-door.js';
import type { GroupRegistry } from './registry.js';
import { parseClientBody, type Route } from './repair.js';

export interface ProxyServerOptions {
  engine: FailoverEngine;
  /** Serves `/v1/embeddings`; by default one sharing the chat engine's health, closed at shutdown. */
  embeddings?: EmbeddingsEngine;
  groups: GroupRegistry;
  /** Client keys; empty = no auth. */
  apiKeys?: readonly string[];
  /** Origins allowed besides this machine's (`--cors-origin`); `*` = any. Default: loopback pages only. */
  corsOrigins?: readonly string[];
  /** Host names accepted besides loopback ones while bound to a loopback address (`--allowed-host`). */
  allowedHosts?: readonly string[];
  /** Told of each request refused for its Origin or Host. */
  onRefused?: (refusal: Refusal) => void;
  /** Bytes; default 10 MiB. */
  maxBody?: number;
  observers?: EngineObserver[];
  /** Longest wait for a request's headers (slow-loris); default 30 s. */
  headersTimeoutMs?: number;
  /** Longest wait for a whole request, body included (a trickling body); default 120 s. Answers are not bounded by it. */
  requestTimeoutMs?: number;
  /** Longest a client may leave a stream unread (the upstream waits meanwhile) before it is dropped; default 120 s. */
  clientStallTimeoutMs?: number;
  /** Client model names (`claude-sonnet-*`) → groups, for the agent front doors. */
  modelMap?: readonly ModelMapping[];
  /** Extra GET routes (`/status`, `/metrics`) that need the same auth. */
  extraRoutes?: Record<string, (req: IncomingMessage, res: ServerResponse, headers: Headers) => void | Promise<void>>;
  /** GET routes without the API key: static files that hold no data (the dashboard's page). */
  publicRoutes?: Record<string, (req: IncomingMessage, res: ServerResponse, headers: Headers) => void | Promise<void>>;
}

export interface ProxyServer {
  server: Server;
  /** Requests being served right now. */
  inFlight(): number;
  /** Stop accepting, let in-flight requests finish (up to `graceMs`), then close. */
  shutdown(graceMs?: number): Promise<void>;
}

const DEFAULT_MAX_BODY = 10 * 1024 * 1024;
const DEFAULT_HEADERS_TIMEOUT = 30_000;
const DEFAULT_REQUEST_TIMEOUT = 120_000;
const DEFAULT_CLIENT_STALL_TIMEOUT = 120_000;

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

const DONE = 'data: [DONE]\n\n';

export function createProxyServer(options: ProxyServerOptions): ProxyServer {
  const maxBody = options.maxBody ?? DEFAULT_MAX_BODY;
  const observers = options.observers ?? [];
  const keyDigests = (options.apiKeys ?? []).filter((k) => k !== '').map(digest);
  const access = createAccessControl(options);
  const baseHeaders: Headers = {
    ...access.baseHeaders,
    'access-control-expose-headers':
      'x-request-id, x-failproxy-endpoint, x-failproxy-attempts, x-failproxy-repaired, x-failproxy-repaired-history, x-failproxy-estimate, retry-after, retry-after-ms, x-should-retry',
  };
  const embeddings = options.embeddings ?? new EmbeddingsEngine({ health: options.engine.health });
  const embeddingsRoute = { engine: embeddings, groups: options.groups, observers, maxBody };
  const frontDoorDeps: FrontDoorDeps = {
    engine: options.engine,
    groups: options.groups,
    observers,
    modelMap: options.modelMap ?? [],
    maxBody,
    clientStallTimeoutMs: options.clientStallTimeoutMs ?? DEFAULT_CLIENT_STALL_TIMEOUT,
  };
  const messagesDoor = messagesFrontDoor();
  const responsesDoor = responsesFrontDoor();
  let inFlight = 0;
  let draining = false;
  const idle: Array<() => void> = [];

  const headersTimeout = options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT;
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT;
  const clientStallTimeout = options.clientStallTimeoutMs ?? DEFAULT_CLIENT_STALL_TIMEOUT;
  // Node checks both timeouts only every `connectionsCheckingInterval` (30 s
  // by default), so a 30 s headers timeout could really be a minute.
  const connectionsCheckingInterval = Math.max(50, Math.min(30_000, Math.floor(Math.min(headersTimeout, requestTimeout) / 4)));
  const server = createServer({ connectionsCheckingInterval }, (req, res) => {
    inFlight += 1;
    res.on('close', () => {
      inFlight -= 1;
      if (inFlight === 0) for (const resolve of idle.splice(0)) resolve();
    });
    if (draining) res.setHeader('connection', 'close');
    handle(req, res).catch((err: unknown) => {
      // A bug must cost one request, never the process.
      const headers = { ...baseHeaders };
      if (!res.headersSent) sendError(res, 500, `internal error: ${(err as Error)?.message ?? err}`, 'server_error', 'internal_error', null, headers);
      else res.destroy();
    });
  });
  // Slow clients must not hold sockets forever: requestTimeout also cuts a
  // body that trickles in, but never an answer being streamed back.
  server.headersTimeout = headersTimeout;
  server.requestTimeout = requestTimeout;
  server.keepAliveTimeout = 5_000;
  access.watch(server);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    // Object.assign, not `{ ...baseHeaders, 'x-request-id': … }`: in Node 20's V8 a
    // spread followed by new keys gives each object its own hidden class, and
    // these headers live as long as the stream.
    const headers: Headers = Object.assign({}, baseHeaders);
    headers['x-request-id'] = requestId;
    const method = req.method ?? 'GET';
    const path = pathOf(req.url);

    // Before anything else: no body is read, no key checked, no route run for a page that is not allowed.
    if (!access.admit(req, res, headers, method, path)) return;
    if (method === 'OPTIONS') return sendPreflight(req, res, headers);
    if (method === 'GET' && path === '/health') return sendJson(res, 200, { status: 'ok' }, headers);
    const open = options.publicRoutes?.[path];
    if (method === 'GET' && open) return open(req, res, headers);
    if (keyDigests.length > 0 && !authorized(req, keyDigests)) {
      return sendError(res, 401, 'Missing or invalid API key: send Authorization: Bearer <key>', 'invalid_request_error', 'invalid_api_key', null, headers);
    }
    if (method === 'GET' && (path === '/v1/models' || path === '/models')) return listModels(res, headers);
    const extra = options.extraRoutes?.[path];
    if (method === 'GET' && extra) return extra(req, res, headers);
    if (path === '/v1/chat/completions' || path === '/chat/completions') {
      return method === 'POST' ? proxy(req, res, headers, requestId, 'chat') : notAllowed(res, headers);
    }
    if (path === '/v1/completions' || path === '/completions') {
      return method === 'POST' ? proxy(req, res, headers, requestId, 'completions') : notAllowed(res, headers);
    }
    if (path === '/v1/embeddings' || path === '/embeddings') {
      return method === 'POST' ? serveEmbeddings(embeddingsRoute, req, res, headers, requestId) : notAllowed(res, headers);
    }
    if (path === '/v1/messages' || path === '/messages') {
      return method === 'POST' ? serveFrontDoor(frontDoorDeps, messagesDoor, req, res, headers, requestId) : notAllowed(res, headers);
    }
    if (path === '/v1/messages/count_tokens' || path === '/messages/count_tokens') {
      if (method !== 'POST') return notAllowed(res, headers);
      const read = await readJsonBody(req, maxBody, messagesDoor);
      if (read) sendReply(res, read.ok ? countTokens(read.body) : read.reply, headers);
      return;
    }
    if (path === '/v1/responses' || path === '/responses') {
      return method === 'POST' ? serveFrontDoor(frontDoorDeps, responsesDoor, req, res, headers, requestId) : notAllowed(res, headers);
    }
    sendError(res, 404, `Unknown route ${method} ${path}`, 'invalid_request_error', 'not_found', null, headers);
  }

  function listModels(res: ServerResponse, headers: Headers): void {
    const data = options.groups.all().map((g) => ({ id: g.name, object: 'model', created: 0, owned_by: 'failproxy' }));
    sendJson(res, 200, { object: 'list', data }, headers);
  }

  async function proxy(req: IncomingMessage, res: ServerResponse, headers: Headers, requestId: string, route: Route): Promise<void> {
    let raw: Buffer | null;
    try {
      raw = await readBody(req, maxBody);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        res.setHeader('connection', 'close');
        return sendError(res, 413, `Request body is larger than ${maxBody} bytes`, 'invalid_request_error', 'request_too_large', null, headers);
      }
      throw err;
    }
    if (raw === null) return;
    const declared = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
    const parsed = parseClientBody(raw, route, declared);
    // This frame lives as long as the answer streams: do not keep the request's bytes too.
    raw = null;
    if (!parsed.ok) {
      return sendError(res, 400, `Invalid request body: ${parsed.message}`, 'invalid_request_error', 'invalid_json', parsed.param, headers);
    }
    if (parsed.repaired) headers['x-failproxy-repaired'] = 'true';
    const body = parsed.request;
    const group = options.groups.get(body.model);
    if (!group) {
      const names = options.groups.names();
      const known = names.length > 0 ? `Available groups: ${names.join(', ')}` : 'No groups are configured';
      return sendError(res, 404, `The model (group) '${body.model}' does not exist. ${known}.`, 'invalid_request_error', 'model_not_found', 'model', headers);
    }
    if (isEmbeddingsGroup(group)) {
      const message = `Group '${group.name}' is an embeddings group (kind: embeddings); send it to /v1/embeddings`;
      return sendError(res, 400, message, 'invalid_request_error', 'wrong_group_kind', 'model', headers);
    }

    if (body.stream === true && route === 'chat' && typeof group.earlyStartS === 'number') {
      return serveChatWithEarlyStart(frontDoorDeps, body, group, group.earlyStartS, res, headers, requestId, parsed.repaired);
    }
    const cancellation = new Cancellation();
    const onClose = (): void => {
      if (!res.writableFinished) cancellation.abort();
    };
    res.on('close', onClose);
    const context: RequestContext = {
      requestId,
      group: group.name,
      stream: body.stream === true,
      source: 'serve',
      repaired: parsed.repaired,
      messages: body.messages,
      body,
    };
    const stream = body.stream === true;
    // Keeps a conversation on one key lane (sticky sessions): the client's own session header.
    const session = req.headers['x-session-id'] ?? req.headers['x-claude-code-session-id'];
    const sessionId = typeof session === 'string' && session !== '' ? session.slice(0, 200) : undefined;
    const events = options.engine.run({ requestId, group, body, signal: cancellation, sessionId });
    let completionId: string | undefined;
    const encoder = stream && route === 'chat' ? new ChunkEncoder() : null;
    // What one upstream read brings (the head, chunks, the end) leaves in one
    // write: the socket is corked until the events of this tick are written.
    let corked = false;
    const uncork = (): void => {
      corked = false;
      res.uncork();
    };
    for await (const event of events) {
      for (const observer of observers) observer.onEvent(context, event);
      if (res.destroyed) continue;
      if (stream) {
        if (!corked) {
          corked = true;
          res.cork();
          process.nextTick(uncork);
        }
        const wrote = writeStreamEvent(res, headers, event, encoder);
        if (wrote === false) await drained(res, clientStallTimeout);
      } else {
        completionId = writeJsonEvent(res, headers, event, route, completionId);
      }
    }
  }

  /**
   * Returns false when the socket asked us to wait (backpressure). `encoder`
   * writes chat chunks; without one they become legacy text-completion chunks.
   */
  function writeStreamEvent(res: ServerResponse, headers: Headers, event: EngineEvent, encoder: ChunkEncoder | null): boolean | undefined {
    switch (event.type) {
      case 'commit':
        headers['x-failproxy-endpoint'] = event.endpoint;
        headers['x-failproxy-attempts'] = String(event.n);
        res.writeHead(200, Object.assign(headers, SSE_HEADERS));
        res.flushHeaders();
        return true;
      case 'chunks': {
        let text = '';
        for (const chunk of event.chunks) {
          if (encoder) {
            text += encoder.encode(chunk);
            continue;
          }
          const payload = toTextCompletionChunk(chunk);
          if (payload !== null) text += `data: ${JSON.stringify(payload)}\n\n`;
        }
        return text === '' ? true : res.write(text);
      }
      case 'done':
        res.end(DONE);
        return true;
      case 'interrupted':
        res.end(`data: ${JSON.stringify(event.error)}\n\n`);
        return true;
      case 'failed':
        sendJson(res, event.status, event.error, { ...headers, ...event.headers });
        return true;
      case 'cancelled':
        res.destroy();
        return true;
      default:
        return undefined;
    }
  }

  function writeJsonEvent(
    res: ServerResponse,
    headers: Headers,
    event: EngineEvent,
    route: Route,
    pending: string | undefined,
  ): string | undefined {
    switch (event.type) {
      case 'commit':
        headers['x-failproxy-endpoint'] = event.endpoint;
        headers['x-failproxy-attempts'] = String(event.n);
        return pending;
      case 'completion': {
        const payload = route === 'chat' ? event.completion : toTextCompletion(event.completion);
        return JSON.stringify(payload);
      }
      case 'done':
        if (pending !== undefined && !res.headersSent) {
          headers['content-type'] = 'application/json';
          headers['content-length'] = String(Buffer.byteLength(pending));
          res.writeHead(200, headers);
          res.end(pending);
        }
        return undefined;
      case 'failed':
        sendJson(res, event.status, event.error, { ...headers, ...event.headers });
        return undefined;
      case 'cancelled':
        res.destroy();
        return undefined;
      default:
        return pending;
    }
  }

  function notAllowed(res: ServerResponse, headers: Headers): void {
    sendError(res, 405, 'Method not allowed', 'invalid_request_error', 'method_not_allowed', null, { ...headers, allow: 'POST' });
  }

  return {
    server,
    inFlight: () => inFlight,
    async shutdown(graceMs = 30_000) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => idle.push(resolve)),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, graceMs);
          }),
        ]);
        clearTimeout(timer);
      }
      server.closeAllConnections();
      await closed;
      if (!options.embeddings) await embeddings.close();
    },
  };
}

function pathOf(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function authorized(req: IncomingMessage, keys: readonly Buffer[]): boolean {
  const auth = req.headers.authorization;
  let presented: string | undefined;
  if (typeof auth === 'string' && /^bearer\s+/i.test(auth)) presented = auth.replace(/^bearer\s+/i, '').trim();
  else if (typeof req.headers['x-api-key'] === 'string') presented = req.headers['x-api-key'].trim();
  if (!presented) return false;
  const candidate = digest(presented);
  return keys.some((k) => timingSafeEqual(k, candidate));
}
