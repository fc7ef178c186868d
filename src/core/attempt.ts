/**
 * One upstream request: sends it with undici on a dispatcher the engine owns,
 * and enforces the endpoint's `timeout` by phase with a single watchdog timer:
 * before commit it bounds the whole wait for the first token (or the whole
 * response when not streaming); after commit it bounds the silence between two
 * chunks. SSE comments never feed the watchdog — keep-alives must not keep a
 * dead upstream alive.
 */
import type { Dispatcher } from 'undici';
import { classifyTransportError, failureFromResponse, parseRetryAfter } from './classify.js';
import { adapterFor } from './providers/index.js';
import { SseDecoder, type SseEvent } from './sse.js';
import type { Endpoint, Failure } from './types.js';

type BodyReadable = Dispatcher.ResponseData['body'];

export type OpenResult =
  | { kind: 'failure'; failure: Failure }
  | { kind: 'cancelled' }
  /** A complete 2xx body that is not an event stream (JSON, or whatever the upstream sent). */
  | { kind: 'body'; status: number; contentType: string; text: string }
  /** A 2xx event stream, not yet read. */
  | { kind: 'sse'; status: number; body: BodyReadable };

interface Target {
  origin: string;
  path: string;
  headers: Record<string, string>;
}

const targets = new WeakMap<Endpoint, Target>();

function targetFor(endpoint: Endpoint): Target {
  let target = targets.get(endpoint);
  if (!target) {
    const url = new URL(`${endpoint.baseurl}/chat/completions`);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'user-agent': 'failproxy',
      ...adapterFor(endpoint.type).headers(endpoint),
      ...endpoint.headers,
    };
    if (endpoint.apikey !== '') headers.authorization = `Bearer ${endpoint.apikey}`;
    target = { origin: url.origin, path: url.pathname + url.search, headers };
    targets.set(endpoint, target);
  }
  return target;
}

const MAX_ERROR_BODY = 64 * 1024;

/** The connection went away before the response head (a stale kept-alive socket, most often). */
const CLOSED_CONNECTION: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

export class UpstreamAttempt {
  readonly endpoint: Endpoint;
  readonly #controller: AbortController;
  #timer: NodeJS.Timeout | undefined;
  #timeoutPhase: string | null = null;
  #phase = 'no response';
  #body: BodyReadable | undefined;

  readonly #timeoutMs: number;

  /**
   * The caller's `controller` ends the attempt from outside (client gone,
   * deadline, a hedge that lost) and is the one the watchdog aborts too, so
   * an attempt costs one AbortController. `timeoutMs` defaults to the
   * endpoint's and is shorter when a request deadline leaves less.
   */
  constructor(endpoint: Endpoint, controller: AbortController = new AbortController(), timeoutMs: number = endpoint.timeoutMs) {
    this.endpoint = endpoint;
    this.#controller = controller;
    this.#timeoutMs = timeoutMs;
  }

  /** True when the caller (not the upstream, not the watchdog) ended the attempt. */
  get cancelled(): boolean {
    return this.#controller.signal.aborted && this.#timeoutPhase === null;
  }

  /** Send the request and read the response head (and the whole body unless it streams). */
  async open(dispatcher: Dispatcher, body: string): Promise<OpenResult> {
    if (this.#controller.signal.aborted) return { kind: 'cancelled' };
    this.#timer = setTimeout(() => this.#expire(), this.#timeoutMs);
    try {
      const response = await this.#send(dispatcher, body);
      this.#body = response.body;
      const contentType = headerValue(response.headers['content-type']) ?? '';
      if (response.statusCode < 200 || response.statusCode >= 300) {
        const text = await readCapped(response.body, MAX_ERROR_BODY);
        const retryAfterMs = parseRetryAfter(
          headerValue(response.headers['retry-after']),
          headerValue(response.headers['retry-after-ms']),
        );
        return { kind: 'failure', failure: failureFromResponse(response.statusCode, contentType, text, retryAfterMs) };
      }
      if (contentType.includes('text/event-stream')) {
        this.#phase = 'no first token';
        return { kind: 'sse', status: response.statusCode, body: response.body };
      }
      const text = await response.body.text();
      return { kind: 'body', status: response.statusCode, contentType, text };
    } catch (err) {
      return this.failureFrom(err);
    }
  }

  /**
   * Send the request; once more at once when the connection closed before any
   * answer. undici can hand out a kept-alive socket the upstream has just
   * closed: the upstream's idle timer starts when it wrote its last byte, ours
   * when we read it — much later behind a slow client. Go's net/http resends
   * on a closed idle connection for the same reason.
   */
  async #send(dispatcher: Dispatcher, body: string): Promise<Dispatcher.ResponseData> {
    const target = targetFor(this.endpoint);
    const options: Dispatcher.RequestOptions = {
      origin: target.origin,
      path: target.path,
      method: 'POST',
      headers: target.headers,
      body,
      signal: this.#controller.signal,
    };
    try {
      return await dispatcher.request(options);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (this.#controller.signal.aborted || typeof code !== 'string' || !CLOSED_CONNECTION.has(code)) throw err;
      return await dispatcher.request(options);
    }
  }

  /** Decode the event stream. Throws what the transport throws; map it with `failureFrom`. */
  async *events(): AsyncGenerator<SseEvent> {
    const body = this.#body;
    if (!body) return;
    const decoder = new SseDecoder();
    for await (const bytes of body as AsyncIterable<Buffer>) {
      const events = decoder.push(bytes);
      for (const event of events) yield event;
    }
    for (const event of decoder.end()) yield event;
  }

  /** The first token arrived: from now on the watchdog bounds silence between chunks. */
  commit(): void {
    this.#phase = 'stream stalled';
    this.#timer?.refresh();
  }

  /** After commit: the wait for the next chunk starts now. */
  touch(): void {
    if (this.#timer === undefined) this.#timer = setTimeout(() => this.#expire(), this.#timeoutMs);
    else this.#timer.refresh();
  }

  /**
   * The consumer has the chunks (a slow client can keep them a while): the
   * watchdog stops until the next `touch()`, because meanwhile the upstream
   * is paused by us, not silent.
   */
  hold(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The answer is complete (`[DONE]` seen); the rest of the body is only read
   * so the connection can be reused. An upstream that keeps it open gets a
   * short grace, then the socket is dropped.
   */
  drainAfterDone(graceMs = 1000): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#controller.abort(), graceMs);
  }

  /** Map a thrown transport error (or our own abort) to a failure. */
  failureFrom(err: unknown): { kind: 'failure'; failure: Failure } | { kind: 'cancelled' } {
    if (this.#timeoutPhase !== null) {
      const seconds = this.#timeoutMs / 1000;
      return { kind: 'failure', failure: { class: 'timeout', message: `${this.#timeoutPhase} within ${seconds} s` } };
    }
    if (this.#controller.signal.aborted) return { kind: 'cancelled' };
    return { kind: 'failure', failure: classifyTransportError(err) };
  }

  /**
   * End the attempt: stop the watchdog and
   * release the connection. A body that is not fully read is aborted so a
   * hung upstream cannot hold a socket.
   */
  close(): void {
    clearTimeout(this.#timer);
    const body = this.#body;
    if (body && !body.readableEnded && !body.destroyed) {
      body.on('error', () => {});
      this.#controller.abort();
    }
  }

  #expire(): void {
    this.#timeoutPhase = this.#phase;
    this.#controller.abort();
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function readCapped(body: BodyReadable, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    parts.push(chunk);
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(parts).toString('utf8');
}
