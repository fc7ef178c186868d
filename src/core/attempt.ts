/**
 * One upstream request: sends it with undici on a dispatcher the engine owns,
 * and enforces the endpoint's `timeout` by phase with a single watchdog timer:
 * before commit it bounds the whole wait for the first token (or the whole
 * response when not streaming); after commit it bounds the silence between two
 * chunks. SSE comments never feed the watchdog — keep-alives must not keep a
 * dead upstream alive.
 *
 * It is undici's dispatch handler itself rather than a `request()` caller:
 * the response arrives as callbacks, so an answer costs no Readable stream,
 * no AbortSignal and one promise (an event stream: one per network read).
 */
import type { Dispatcher } from 'undici';
import type { Cancellation } from './cancellation.js';
import { classifyTransportError, failureFromResponse, isConnectionRefused, parseRetryAfter } from './classify.js';
import { noteRefusal, REFUSED_RECENTLY_MS, refusedRecently } from './refusals.js';
import { dispatchWatched, type SocketWatcher } from './socket-reuse.js';
import { targetFor } from './upstream-target.js';
import { SseDecoder, type SseEvent } from './sse.js';
import type { Endpoint, Failure } from './types.js';

export type OpenResult =
  | { kind: 'failure'; failure: Failure }
  | { kind: 'cancelled' }
  /** A complete 2xx body that is not an event stream (JSON, or whatever the upstream sent). */
  | { kind: 'body'; status: number; contentType: string; text: string }
  /** A 2xx event stream: read it with `nextEvents()`. */
  | { kind: 'sse'; status: number };

const MAX_ERROR_BODY = 64 * 1024;
/** A 2xx answer that is not a stream is held whole; past this it is not an answer we can use. */
const MAX_ANSWER_BODY = 64 * 1024 * 1024;
/** Unread event-stream bytes before the upstream socket is paused (a slow client). */
const HIGH_WATER = 64 * 1024;

/** The connection went away before the response head. */
const CLOSED_CONNECTION: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/** What the response is, once its head is in. */
type Mode = 'head' | 'error' | 'body' | 'sse' | 'done';

export class UpstreamAttempt implements Dispatcher.DispatchHandler, SocketWatcher {
  readonly endpoint: Endpoint;
  readonly #cancel: Cancellation;
  readonly #timeoutMs: number;
  #offCancel: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timeoutPhase: string | null = null;
  #phase = 'no response';

  #dispatcher: Dispatcher | undefined;
  #origin = '';
  #options: Dispatcher.DispatchOptions | undefined;
  #controller: Dispatcher.DispatchController | null = null;
  /** We ended the upstream request (cancel, watchdog, drain grace). */
  #aborted = false;
  /** undici is done with the request: it calls nothing more. */
  #finished = false;
  /** The request went out on a kept-alive socket that had carried one before. */
  #reusedSocket = false;
  #resent = false;
  readonly #onResent: ((why: string) => void) | undefined;

  #mode: Mode = 'head';
  #status = 0;
  #contentType = '';
  #retryAfterMs: number | undefined;
  /** The body of an error or a complete answer (not made for an event stream). */
  #parts: Buffer[] | null = null;
  #size = 0;
  #settle: ((result: OpenResult) => void) | null = null;

  // The event stream: decoded events the consumer has not taken yet (those of
  // one read, usually), and the bytes they came in.
  #decoder: SseDecoder | null = null;
  #pending: SseEvent[] | null = null;
  #queuedBytes = 0;
  #paused = false;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  /**
   * `cancel` ends the attempt from outside (client gone, deadline, a hedge
   * that lost). `timeoutMs` defaults to the endpoint's and is shorter when a
   * request deadline leaves less.
   */
  constructor(endpoint: Endpoint, cancel: Cancellation, timeoutMs: number = endpoint.timeoutMs, onResent?: (why: string) => void) {
    this.endpoint = endpoint;
    this.#cancel = cancel;
    this.#timeoutMs = timeoutMs;
    this.#onResent = onResent;
  }

  /** Send the request and read the response head (and the whole body unless it streams). */
  open(dispatcher: Dispatcher, body: string): Promise<OpenResult> {
    if (this.#cancel.aborted) return Promise.resolve({ kind: 'cancelled' });
    const target = targetFor(this.endpoint);
    const ago = refusedRecently(dispatcher, target.origin);
    if (ago !== null) {
      const message = `connection refused (ECONNREFUSED) ${Math.round(ago)} ms ago; not tried again within ${REFUSED_RECENTLY_MS} ms`;
      return Promise.resolve({ kind: 'failure', failure: { class: 'network', message } });
    }
    this.#dispatcher = dispatcher;
    this.#origin = target.origin;
    this.#options = { origin: target.origin, path: target.path, method: 'POST', headers: target.headers, body };
    this.#timer = setTimeout(() => this.#expire(), this.#timeoutMs);
    this.#offCancel = this.#cancel.onAbort(() => this.#abort());
    return new Promise((resolve) => {
      this.#settle = resolve;
      try {
        dispatchWatched(dispatcher, this.#options!, this);
      } catch (err) {
        // undici's own dispatchers report through onResponseError; another one may throw.
        this.#finished = true;
        this.#resolve(this.failureFrom(err));
      }
    });
  }

  /**
   * The next decoded events of the stream, in the order they arrived; null at
   * its end. Rejects with what the transport threw; map it with `failureFrom`.
   */
  async nextEvents(): Promise<SseEvent[] | null> {
    for (;;) {
      const events = this.#pending;
      if (events !== null) {
        this.#pending = null;
        this.#queuedBytes = 0;
        this.#resumeUpstream();
        return events;
      }
      if (this.#error !== null) throw this.#error;
      if (this.#ended) return null;
      // Waiting for more: an event bigger than the high-water mark must not stay paused.
      this.#resumeUpstream();
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /**
   * An event stream that came as a plain body (some servers stream without the
   * event-stream content type): `nextEvents` gives these, then the end.
   */
  replay(events: SseEvent[]): void {
    this.#pending = events.length > 0 ? events : null;
    this.#ended = true;
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
    this.#timer = setTimeout(() => this.#abort(), graceMs);
  }

  /** Map a thrown transport error (or our own abort) to a failure. */
  failureFrom(err: unknown): { kind: 'failure'; failure: Failure } | { kind: 'cancelled' } {
    if (this.#timeoutPhase !== null) {
      const seconds = this.#timeoutMs / 1000;
      return { kind: 'failure', failure: { class: 'timeout', message: `${this.#timeoutPhase} within ${seconds} s` } };
    }
    if (this.#aborted || this.#cancel.aborted) return { kind: 'cancelled' };
    return { kind: 'failure', failure: classifyTransportError(err) };
  }

  /**
   * End the attempt: stop the watchdog and release the connection. A response
   * that is not fully read is aborted so a hung upstream cannot hold a socket.
   */
  close(): void {
    clearTimeout(this.#timer);
    this.#offCancel?.();
    this.#offCancel = undefined;
    this.#abort();
  }

  // -------------------------------------------------------------------------
  // undici's dispatch handler.

  onSocket(reused: boolean): void {
    this.#reusedSocket = reused;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#aborted) controller.abort(new Error('attempt ended'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // undici keeps the raw header Buffers on the controller for the request's life; we have them parsed.
    controller.rawHeaders = null;
    if (statusCode < 200) return; // 1xx: the real head follows.
    // No resend after a head: the request (and its body) need not be kept.
    this.#options = undefined;
    this.#status = statusCode;
    this.#contentType = headerValue(headers['content-type']) ?? '';
    if (statusCode >= 300) {
      this.#mode = 'error';
      this.#retryAfterMs = parseRetryAfter(headerValue(headers['retry-after']), headerValue(headers['retry-after-ms']));
    } else if (this.#contentType.includes('text/event-stream')) {
      this.#mode = 'sse';
      this.#phase = 'no first token';
      this.#decoder = new SseDecoder();
      this.#resolve({ kind: 'sse', status: statusCode });
    } else {
      this.#mode = 'body';
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    switch (this.#mode) {
      case 'sse': {
        this.#queue(this.#decoder!.push(chunk));
        this.#queuedBytes += chunk.length;
        if (this.#queuedBytes > HIGH_WATER && this.#pending !== null && !this.#paused) {
          this.#paused = true;
          controller.pause();
        }
        this.#wakeConsumer();
        return;
      }
      case 'error':
        (this.#parts ??= []).push(chunk);
        this.#size += chunk.length;
        // Enough to say why it failed; the rest is not worth the wait.
        if (this.#size >= MAX_ERROR_BODY) this.#finishError();
        return;
      case 'body':
        (this.#parts ??= []).push(chunk);
        this.#size += chunk.length;
        if (this.#size > MAX_ANSWER_BODY) {
          this.#mode = 'done';
          this.#parts = null;
          this.#resolve({ kind: 'failure', failure: { class: 'invalid_response', message: `response body larger than ${MAX_ANSWER_BODY / 1024 / 1024} MiB` } });
          this.#abort();
        }
        return;
      default:
        return;
    }
  }

  onResponseEnd(): void {
    this.#finished = true;
    switch (this.#mode) {
      case 'sse': {
        this.#mode = 'done';
        this.#queue(this.#decoder!.end());
        this.#ended = true;
        this.#wakeConsumer();
        return;
      }
      case 'error':
        this.#finishError();
        return;
      case 'body': {
        this.#mode = 'done';
        const text = this.#text();
        this.#resolve({ kind: 'body', status: this.#status, contentType: this.#contentType, text });
        return;
      }
      default:
        this.#mode = 'done';
        return;
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const code = (error as { code?: unknown }).code;
    if (this.#mode === 'head' && this.#reusedSocket && !this.#resent && !this.#aborted && !this.#cancel.aborted && typeof code === 'string' && CLOSED_CONNECTION.has(code)) {
      // A kept-alive socket the upstream closed just as we reused it (its idle
      // timer starts when it wrote its last byte, ours when we read it): it
      // never answered, so resend once on another connection, as Go's net/http
      // does. A fresh connection that dies is never resent (socket-reuse.ts).
      this.#resent = true;
      this.#onResent?.(`the kept-alive connection was closed before any answer (${code}); resent once on a new connection`);
      this.#reusedSocket = false;
      this.#controller = null;
      // After undici has finished with the dead socket, not from inside its error path.
      queueMicrotask(() => {
        try {
          dispatchWatched(this.#dispatcher!, this.#options!, this);
        } catch (err) {
          this.#finished = true;
          this.#resolve(this.failureFrom(err));
        }
      });
      return;
    }
    this.#finished = true;
    const mode = this.#mode;
    this.#mode = 'done';
    if (mode === 'head' && isConnectionRefused(error)) noteRefusal(this.#dispatcher!, this.#origin);
    if (mode === 'sse') {
      this.#error = error;
      this.#wakeConsumer();
      return;
    }
    this.#resolve(this.failureFrom(error));
  }

  // -------------------------------------------------------------------------

  #finishError(): void {
    this.#mode = 'done';
    const text = this.#text();
    this.#resolve({ kind: 'failure', failure: failureFromResponse(this.#status, this.#contentType, text, this.#retryAfterMs) });
    this.#abort();
  }

  #text(): string {
    const parts = this.#parts ?? [];
    this.#parts = null;
    return parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
  }

  #queue(events: SseEvent[]): void {
    if (events.length === 0) return;
    if (this.#pending === null) this.#pending = events;
    else for (const event of events) this.#pending.push(event);
  }

  #resolve(result: OpenResult): void {
    const settle = this.#settle;
    this.#settle = null;
    settle?.(result);
  }

  #resumeUpstream(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#controller?.resume();
  }

  #wakeConsumer(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /**
   * Stop the upstream request, if it still runs. A caller waiting in `open()`
   * gets its answer now (timeout or cancelled), not when undici lets go: a
   * connection still being made is aborted only once it is up.
   */
  #abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    clearTimeout(this.#timer);
    if (this.#settle !== null) this.#resolve(this.failureFrom(null));
    if (this.#finished) return;
    // Before `onRequestStart` the request is not ours to abort yet: it aborts as it starts.
    if (this.#controller !== null && !this.#controller.aborted) this.#controller.abort(new Error('attempt ended'));
  }

  #expire(): void {
    this.#timeoutPhase = this.#phase;
    this.#abort();
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
