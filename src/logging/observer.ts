/**
 * Turns engine events into log lines (SPEC §6): one `attempt` line per
 * attempt and one `request` line per request, the same for `serve` and `ask`,
 * and optionally the readable one-line chain on the console.
 */
import type { EngineObserver, RequestContext } from '../core/observe.js';
import { finalStatus } from '../core/observe.js';
import type { EngineEvent, RequestSummary } from '../core/types.js';
import type { AttemptRecordLine, RequestRecord } from './types.js';
import { usageFigures, type PriceLookup } from './usage.js';
import type { JsonlLogger, LogRecordInput } from './writer.js';

type Stamped<T> = Omit<T, 'ts' | 'level'>;

/** What a request's lines need from earlier events; kept small, it lives as long as the stream. */
interface Pending {
  /** The attempt lines for the chain line; null when nobody prints it. */
  attempts: Stamped<AttemptRecordLine>[] | null;
  /** The last attempt that committed and its first-token ms (attempts commit one after another). */
  ttftN: number;
  ttftMs: number;
  answer: string;
  /** The attempt that is answering now (committed, or resumed). */
  answering: number;
}

export interface LogObserverOptions {
  /** Called with each finished request and its attempts (serve prints the chain line). */
  onRequest?: (request: RequestRecord, attempts: AttemptRecordLine[]) => void;
  /** Endpoint prices, for the request line's `cost` when the upstream reports none. */
  priceOf?: PriceLookup;
}

export class LogObserver implements EngineObserver {
  readonly #logger: JsonlLogger;
  readonly #onRequest: LogObserverOptions['onRequest'];
  readonly #priceOf: PriceLookup | undefined;
  readonly #pending = new Map<string, Pending>();

  constructor(logger: JsonlLogger, options: LogObserverOptions = {}) {
    this.#logger = logger;
    this.#onRequest = options.onRequest;
    this.#priceOf = options.priceOf;
  }

  onEvent(context: RequestContext, event: EngineEvent): void {
    switch (event.type) {
      case 'attempt_start':
        if (event.n === 1) this.#pending.set(context.requestId, this.#newPending());
        return;
      case 'commit': {
        const pending = this.#pendingFor(context);
        pending.ttftN = event.n;
        pending.ttftMs = event.ttftMs;
        pending.answering = event.n;
        return;
      }
      case 'chunks':
        if (this.#logger.enabled('debug')) {
          const pending = this.#pendingFor(context);
          for (const chunk of event.chunks) {
            const delta = chunk.choices[0]?.delta;
            if (typeof delta?.content === 'string') pending.answer += delta.content;
          }
        }
        return;
      case 'completion':
        if (this.#logger.enabled('debug')) {
          this.#pendingFor(context).answer = event.completion.choices[0]?.message.content ?? '';
        }
        return;
      case 'attempt_failed': {
        const { failure } = event;
        const ttft = ttftOf(this.#pendingFor(context), event.n);
        this.#attemptLine(context, 'warn', event, { class: failure.class, status: failure.status ?? null, message: failure.message, ttft_ms: ttft });
        return;
      }
      case 'attempt_abandoned':
        this.#attemptLine(context, 'info', event, { class: null, status: null, message: event.reason, abandoned: true });
        return;
      case 'resume':
        this.#pendingFor(context).answering = event.n;
        this.#write('warn', {
          event: 'resume',
          id: context.requestId,
          group: context.group,
          endpoint: event.endpoint,
          n: event.n,
          mode: event.mode,
          reused_chars: event.reusedChars,
        });
        return;
      case 'done':
      case 'failed':
      case 'interrupted':
      case 'cancelled':
        this.#finish(context, event, event.summary);
        return;
    }
  }

  /** An attempt that did not answer: logged now, and kept for the request's chain line. */
  #attemptLine(
    context: RequestContext,
    level: 'info' | 'warn',
    event: { endpoint: string; n: number; ms: number },
    fields: Pick<AttemptRecordLine, 'class' | 'status' | 'message' | 'ttft_ms' | 'abandoned'>,
  ): void {
    const line: Stamped<AttemptRecordLine> = {
      event: 'attempt',
      id: context.requestId,
      group: context.group,
      endpoint: event.endpoint,
      n: event.n,
      ok: false,
      ms: event.ms,
      ...fields,
    };
    this.#pendingFor(context).attempts?.push(line);
    this.#write(level, line);
  }

  #newPending(): Pending {
    return { attempts: this.#onRequest ? [] : null, ttftN: 0, ttftMs: 0, answer: '', answering: 0 };
  }

  #pendingFor(context: RequestContext): Pending {
    let pending = this.#pending.get(context.requestId);
    if (!pending) {
      pending = this.#newPending();
      this.#pending.set(context.requestId, pending);
    }
    return pending;
  }

  #finish(context: RequestContext, event: EngineEvent, summary: RequestSummary): void {
    const pending = this.#pendingFor(context);
    this.#pending.delete(context.requestId);
    for (const attempt of summary.attempts) {
      if (attempt.resent !== undefined) {
        this.#write('warn', { event: 'resend', id: context.requestId, group: context.group, endpoint: attempt.endpoint, message: attempt.resent });
      }
    }
    if (event.type === 'done') {
      const n = pending.answering || summary.attempts.length;
      const record = summary.attempts[summary.attempts.length - 1];
      const line: Stamped<AttemptRecordLine> = {
        event: 'attempt',
        id: context.requestId,
        group: context.group,
        endpoint: summary.endpoint ?? record?.endpoint ?? '',
        n,
        ok: true,
        class: null,
        status: 200,
        message: null,
        ms: record?.ms ?? summary.ms,
        ttft_ms: ttftOf(pending, n),
      };
      pending.attempts?.push(line);
      this.#write('info', line);
    }
    const outcome: RequestRecord['outcome'] =
      event.type === 'done' ? 'ok' : event.type === 'failed' ? 'failed' : event.type === 'interrupted' ? 'interrupted' : 'cancelled';
    const request: Stamped<RequestRecord> = {
      event: 'request',
      id: context.requestId,
      group: context.group,
      stream: context.stream,
      endpoint: summary.endpoint,
      attempts: summary.attempts.length,
      status: finalStatus(event) ?? 0,
      outcome,
      ms: summary.ms,
      ttft_ms: summary.ttftMs,
      usage: summary.usage,
      source: context.source,
    };
    if (context.repaired) request.repaired = true;
    if (context.api) request.api = context.api;
    const cost = this.#costOf(context.group, summary);
    if (cost !== null) request.cost = cost;
    if (this.#logger.enabled('debug')) {
      request.messages = context.messages;
      request.answer = pending.answer;
    }
    const level = outcome === 'ok' || outcome === 'cancelled' ? 'info' : 'error';
    this.#write(level, request);
    if (this.#onRequest) {
      const ts = new Date().toISOString();
      this.#onRequest(
        { ...request, ts, level },
        (pending.attempts ?? []).map((a) => ({ ...a, ts, level: a.ok ? 'info' : 'warn' })),
      );
    }
  }

  #costOf(group: string, summary: RequestSummary): number | null {
    if (summary.usage === null) return null;
    const price = summary.endpoint !== null ? this.#priceOf?.(group, summary.endpoint) : undefined;
    return usageFigures(summary.usage, price)?.cost ?? null;
  }

  #write(level: 'debug' | 'info' | 'warn' | 'error', record: LogRecordInput): void {
    this.#logger.log(level, record);
  }
}

function ttftOf(pending: Pending, n: number): number | null {
  return pending.ttftN === n ? pending.ttftMs : null;
}
