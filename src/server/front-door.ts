/**
 * Serving a front door (`/v1/messages`, `/v1/responses`): read the body, let
 * the protocol translate it, run the engine, and write what the protocol makes
 * of its events. The failover is the engine's; the protocol only translates.
 *
 * Early start (group option `early_start_s`): agents abort a stream that stays
 * silent, and the engine holds the answer back until the first token, which
 * may take several slow failovers. After that long without a commit, the 200
 * head and the protocol's opening event go out, then a keep-alive at most
 * every 10 s until the first token. The price: an all-failed outcome can no
 * longer be a real HTTP status, so it becomes the protocol's in-band error.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Cancellation } from '../core/cancellation.js';
import type { FailoverEngine } from '../core/engine.js';
import type { EngineObserver, RequestContext } from '../core/observe.js';
import type { EngineEvent, Group } from '../core/types.js';
import { resolveGroup, type ModelMapping } from '../protocols/model-map.js';
import { isReply, type Exchange, type FrontDoor, type Reply, type StreamWriter } from '../protocols/types.js';
import { BodyTooLargeError, drained, readBody, sendJson, type Headers } from './http.js';
import type { GroupRegistry } from './registry.js';
import { MAX_NESTING, nestsDeeperThan } from './repair.js';

export interface FrontDoorDeps {
  engine: FailoverEngine;
  groups: GroupRegistry;
  observers: EngineObserver[];
  modelMap: readonly ModelMapping[];
  maxBody: number;
  clientStallTimeoutMs: number;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** Keep-alives come at least this often, and never more often than every second. */
const MAX_KEEPALIVE_MS = 10_000;
const MIN_KEEPALIVE_MS = 1_000;

const TIMEOUT = Symbol('timeout');

type BodyResult = { ok: true; body: unknown } | { ok: false; reply: Reply };

/** Reads and parses a JSON body, answering problems in the protocol's error shape. */
export async function readJsonBody(
  req: IncomingMessage,
  maxBody: number,
  door: Pick<FrontDoor, 'error'>,
): Promise<BodyResult | null> {
  let raw: Buffer | null;
  try {
    raw = await readBody(req, maxBody);
  } catch (err) {
    if (err instanceof BodyTooLargeError)
      return { ok: false, reply: door.error(413, `Request body is larger than ${maxBody} bytes`) };
    throw err;
  }
  if (raw === null) return null;
  const text = raw.toString('utf8');
  // The upstream body is built with the recursive JSON.stringify: too deep a body would cost a 500.
  if (nestsDeeperThan(text, MAX_NESTING))
    return { ok: false, reply: door.error(400, `the JSON nests deeper than ${MAX_NESTING} levels`) };
  try {
    return { ok: true, body: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, reply: door.error(400, `Invalid request body: ${(err as Error).message}`) };
  }
}

export function sendReply(res: ServerResponse, reply: Reply, headers: Headers): void {
  if (reply.status === 413) res.setHeader('connection', 'close');
  sendJson(res, reply.status, reply.body, { ...headers, ...reply.headers });
}

export async function serveFrontDoor(
  deps: FrontDoorDeps,
  door: FrontDoor,
  req: IncomingMessage,
  res: ServerResponse,
  headers: Headers,
  requestId: string,
): Promise<void> {
  const read = await readJsonBody(req, deps.maxBody, door);
  if (read === null) return;
  if (!read.ok) return sendReply(res, read.reply, headers);
  const lookup = (name: string): Group | undefined => deps.groups.get(name);
  const accepted = door.accept(read.body, (model) => resolveGroup(model, lookup, deps.modelMap), deps.groups.names());
  if (isReply(accepted)) return sendReply(res, accepted, headers);
  const earlyStartS = accepted.group.earlyStartS === undefined ? door.defaultEarlyStartS : accepted.group.earlyStartS;
  return runExchange(deps, accepted, { api: door.api, earlyStartS, repaired: false }, res, headers, requestId);
}

export interface ExchangeOptions {
  /** The front door, for log lines; undefined = chat. */
  api?: string;
  /** Seconds before an early start; null = off. */
  earlyStartS: number | null;
  repaired: boolean;
}

/** Runs the engine for an accepted request and writes its events the protocol's way. */
export async function runExchange(
  deps: FrontDoorDeps,
  accepted: Exchange,
  options: ExchangeOptions,
  res: ServerResponse,
  headers: Headers,
  requestId: string,
): Promise<void> {
  Object.assign(headers, accepted.headers);
  const cancellation = new Cancellation();
  res.on('close', () => {
    if (!res.writableFinished) cancellation.abort();
  });
  const context: RequestContext = {
    requestId,
    group: accepted.group.name,
    stream: accepted.stream,
    source: 'serve',
    repaired: options.repaired,
    messages: accepted.chat.messages,
  };
  if (options.api !== undefined) context.api = options.api;
  const events = deps.engine.run({ requestId, group: accepted.group, body: accepted.chat, signal: cancellation });
  const iterator = events[Symbol.asyncIterator]();
  const writer = accepted.stream ? new StreamState(res, headers, accepted, accepted.streamWriter()) : null;
  let earlyStart = writer && options.earlyStartS !== null ? options.earlyStartS * 1000 : null;
  let pendingBody: unknown;
  let next = iterator.next();
  for (;;) {
    const result =
      writer && !writer.committed && earlyStart !== null ? await raceTimeout(next, earlyStart) : await next;
    if (result === TIMEOUT) {
      writer?.wait();
      earlyStart = Math.min(MAX_KEEPALIVE_MS, Math.max(MIN_KEEPALIVE_MS, earlyStart ?? 0));
      continue;
    }
    if (result.done) break;
    const event = result.value;
    for (const observer of deps.observers) observer.onEvent(context, event);
    if (!res.destroyed) {
      if (writer) {
        if (writer.write(event) === false) await drained(res, deps.clientStallTimeoutMs);
      } else {
        pendingBody = writeJsonEvent(res, headers, accepted, event, pendingBody);
      }
    }
    next = iterator.next();
  }
}

function raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMEOUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMEOUT), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A streaming answer: whether its head went out, and what each event writes. */
class StreamState {
  committed = false;
  #started = false;

  constructor(
    readonly res: ServerResponse,
    readonly headers: Headers,
    readonly exchange: Exchange,
    readonly writer: StreamWriter,
  ) {}

  /** The early-start timer fired: open the stream, or keep it alive. */
  wait(): void {
    if (this.res.destroyed) return;
    if (this.#started) {
      this.res.write(this.writer.keepAlive());
      return;
    }
    this.#start(this.exchange.chat.model);
  }

  /** False when the socket asked us to wait. */
  write(event: EngineEvent): boolean {
    const { res, writer } = this;
    switch (event.type) {
      case 'commit':
        this.committed = true;
        if (!this.#started) {
          this.headers['x-failproxy-endpoint'] = event.endpoint;
          this.headers['x-failproxy-attempts'] = String(event.n);
          this.#start(event.model);
        }
        return true;
      case 'chunks': {
        const text = writer.chunks(event.chunks);
        return text === '' ? true : res.write(text);
      }
      case 'done':
        res.end(writer.done(event));
        return true;
      case 'interrupted':
        res.end(writer.interrupted(event));
        return true;
      case 'failed':
        if (this.#started) res.end(writer.failed(event));
        else sendReply(res, this.exchange.failure(event), this.headers);
        return true;
      case 'cancelled':
        res.destroy();
        return true;
      default:
        return true;
    }
  }

  #start(model: string): void {
    this.#started = true;
    this.res.writeHead(200, Object.assign(this.headers, SSE_HEADERS));
    this.res.write(this.writer.open(model));
  }
}

function writeJsonEvent(
  res: ServerResponse,
  headers: Headers,
  exchange: Exchange,
  event: EngineEvent,
  pending: unknown,
): unknown {
  switch (event.type) {
    case 'commit':
      headers['x-failproxy-endpoint'] = event.endpoint;
      headers['x-failproxy-attempts'] = String(event.n);
      return pending;
    case 'completion':
      return exchange.completion(event.completion);
    case 'done':
      if (pending !== undefined) sendJson(res, 200, pending, headers);
      return undefined;
    case 'failed':
      sendReply(res, exchange.failure(event), headers);
      return undefined;
    case 'cancelled':
      res.destroy();
      return undefined;
    default:
      return pending;
  }
}
