/**
 * The failover engine (SPEC §3): walks a group's endpoints in order, commits
 * to the first that produces a real token, and reports everything it does as
 * typed events. Nothing here knows about HTTP servers, terminals or files.
 *
 * `run()` is an async generator, so a slow consumer naturally pauses the
 * upstream read (backpressure) and stopping the iteration releases it.
 */
import { performance } from 'node:perf_hooks';
import { Agent, type Dispatcher } from 'undici';
import { UpstreamAttempt } from './attempt.js';
import { failureFromErrorPayload } from './classify.js';
import { HealthTracker } from './health.js';
import { CompletionAggregator, explodeCompletion } from './openai/convert.js';
import { StreamNormalizer, type NormalizeOptions } from './openai/normalize.js';
import { buildAllFailed, interruptedError, type FailedAttempt } from './outcome.js';
import { registerSecrets } from './redact.js';
import { buildUpstreamBody, judgeCompletionBody } from './request.js';
import { SseDecoder, type SseEvent } from './sse.js';
import type {
  AttemptRecord,
  ChatCompletionChunk,
  ChatRequest,
  Endpoint,
  EngineEvent,
  Failure,
  FinishReason,
  Group,
  JsonObject,
  RequestSummary,
  Usage,
} from './types.js';

/** Groups whose keys the redactor already knows (a reload makes a new group object). */
const registeredGroups = new WeakSet<Group>();

export interface EngineOptions {
  /** Upstream HTTP client; by default the engine creates (and closes) its own undici Agent. */
  dispatcher?: Dispatcher;
  /** Cooldown state; share one tracker between engines to share health. */
  health?: HealthTracker;
}

export interface EngineRequest {
  /** Correlates events, logs and the `x-request-id` header. */
  requestId: string;
  group: Group;
  /** The client's request; `stream: true` makes the engine emit chunks, else one completion. */
  body: ChatRequest;
  /** Aborting it (client gone, Ctrl-C) aborts the upstream request at once. */
  signal?: AbortSignal;
}

type AttemptOutcome =
  | { kind: 'failed'; failure: Failure }
  | { kind: 'interrupted'; failure: Failure }
  | { kind: 'cancelled' }
  | {
      kind: 'done';
      ttftMs: number;
      usage: Usage | null;
      finishReason: FinishReason;
      /** Read what the upstream still sends after `[DONE]` so its connection can be reused. */
      drain?: () => Promise<void>;
    };

/** Everything an attempt needs to know about the request it serves. */
interface AttemptPlan {
  request: EngineRequest;
  endpoint: Endpoint;
  n: number;
  clientStream: boolean;
  normalize: NormalizeOptions;
  started: number;
}

export class FailoverEngine {
  readonly health: HealthTracker;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;

  constructor(options: EngineOptions = {}) {
    this.health = options.health ?? new HealthTracker();
    this.#ownsDispatcher = options.dispatcher === undefined;
    // Our own watchdog bounds every phase (attempt.ts); undici's 300 s defaults
    // would otherwise kill long reasoning calls on their own schedule.
    this.#dispatcher =
      options.dispatcher ??
      new Agent({ headersTimeout: 0, bodyTimeout: 0, connect: { timeout: 30_000 }, keepAliveTimeout: 10_000 });
  }

  /** Serve one request through its group. Always ends with done, interrupted, failed or cancelled. */
  async *run(request: EngineRequest): AsyncGenerator<EngineEvent, void, undefined> {
    const { group, body, signal } = request;
    if (!registeredGroups.has(group)) {
      registerSecrets(group.endpoints.map((e) => e.apikey));
      registeredGroups.add(group);
    }
    const clientStream = body.stream === true;
    const includeUsage = clientStream && body.stream_options?.include_usage === true;
    const started = performance.now();
    const records: AttemptRecord[] = [];
    const failed: FailedAttempt[] = [];
    const summary = (endpoint: string | null, ttftMs: number | null, usage: Usage | null): RequestSummary => ({
      requestId: request.requestId,
      group: group.name,
      stream: clientStream,
      endpoint,
      attempts: records,
      ms: Math.round(performance.now() - started),
      ttftMs,
      usage,
    });

    let n = 0;
    for (const { endpoint, cooling } of this.health.plan(group.endpoints)) {
      if (signal?.aborted) {
        yield { type: 'cancelled', summary: summary(null, null, null) };
        return;
      }
      n += 1;
      yield { type: 'attempt_start', n, endpoint: endpoint.name, model: endpoint.model, cooling };
      const attemptStarted = performance.now();
      this.health.beginAttempt(endpoint);
      const normalize: NormalizeOptions = {
        reasoning: group.reasoning,
        thinkOpen: endpoint.thinkOpen === true,
        includeUsage,
        fallbackId: `chatcmpl-${request.requestId}`,
        fallbackCreated: Math.floor(Date.now() / 1000),
        fallbackModel: endpoint.model,
      };
      const outcome = yield* this.#attempt({ request, endpoint, n, clientStream, normalize, started: attemptStarted });
      const ms = Math.round(performance.now() - attemptStarted);

      switch (outcome.kind) {
        case 'cancelled':
          this.health.releaseAttempt(endpoint);
          records.push({ endpoint: endpoint.name, class: null, status: null, message: 'cancelled', ms });
          yield { type: 'cancelled', summary: summary(null, null, null) };
          return;
        case 'failed':
          this.health.recordFailure(endpoint, outcome.failure, group.cooldown);
          records.push(recordOf(endpoint, outcome.failure, ms));
          failed.push({ endpoint: endpoint.name, failure: outcome.failure, ms });
          yield { type: 'attempt_failed', n, endpoint: endpoint.name, failure: outcome.failure, ms, afterCommit: false };
          continue;
        case 'interrupted':
          this.health.recordFailure(endpoint, outcome.failure, group.cooldown);
          records.push(recordOf(endpoint, outcome.failure, ms));
          yield { type: 'attempt_failed', n, endpoint: endpoint.name, failure: outcome.failure, ms, afterCommit: true };
          yield {
            type: 'interrupted',
            summary: summary(endpoint.name, null, null),
            failure: outcome.failure,
            error: interruptedError(outcome.failure),
          };
          return;
        case 'done': {
          this.health.recordSuccess(endpoint);
          records.push({ endpoint: endpoint.name, class: null, status: null, message: null, ms });
          const ttft = Math.round(attemptStarted - started + outcome.ttftMs);
          try {
            yield { type: 'done', summary: summary(endpoint.name, ttft, outcome.usage), finishReason: outcome.finishReason };
          } finally {
            // Also when the consumer stops iterating at `done`.
            if (outcome.drain) await outcome.drain();
          }
          return;
        }
      }
    }

    const allFailed = buildAllFailed(group.name, failed, group.skipped);
    yield { type: 'failed', summary: summary(null, null, null), ...allFailed };
  }

  /** Close the engine's own upstream connections. */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  async *#attempt(plan: AttemptPlan): AsyncGenerator<EngineEvent, AttemptOutcome, undefined> {
    const { endpoint, clientStream } = plan;
    const upstreamStream = endpoint.stream ?? clientStream;
    const attempt = new UpstreamAttempt(endpoint, plan.request.signal);
    let handedOff = false;
    try {
      const opened = await attempt.open(this.#dispatcher, buildUpstreamBody(plan.request.body, endpoint, upstreamStream));
      if (opened.kind === 'failure') return { kind: 'failed', failure: opened.failure };
      if (opened.kind === 'cancelled') return opened;
      if (opened.kind === 'body') {
        const text = opened.text.trimStart();
        // Some servers stream without the event-stream content type.
        if (text.startsWith('data:')) {
          const decoder = new SseDecoder();
          const events = [...decoder.push(Buffer.from(text)), ...decoder.end()];
          return yield* this.#consumeStream(plan, attempt, arrayIterator(events));
        }
        return yield* this.#answerFromBody(plan, opened.text, opened.contentType);
      }
      const outcome = yield* this.#consumeStream(plan, attempt, attempt.events());
      if (outcome.kind === 'done' && outcome.drain) handedOff = true;
      return outcome;
    } finally {
      if (!handedOff) attempt.close();
    }
  }

  /** A complete upstream body: validate, then answer as a completion or as a replayed stream. */
  async *#answerFromBody(
    plan: AttemptPlan,
    text: string,
    contentType: string,
  ): AsyncGenerator<EngineEvent, AttemptOutcome, undefined> {
    const verdict = judgeCompletionBody(text, contentType, plan.normalize);
    if ('failure' in verdict) return { kind: 'failed', failure: verdict.failure };
    const { completion } = verdict;
    const ttftMs = performance.now() - plan.started;
    yield { type: 'commit', n: plan.n, endpoint: plan.endpoint.name, model: completion.model, ttftMs: Math.round(ttftMs) };
    if (plan.clientStream) {
      for (const chunk of explodeCompletion(completion, { includeUsage: plan.normalize.includeUsage })) {
        yield { type: 'chunk', chunk };
      }
    } else {
      yield { type: 'completion', completion };
    }
    const choice = completion.choices[0];
    return { kind: 'done', ttftMs, usage: completion.usage ?? null, finishReason: choice?.finish_reason ?? 'stop' };
  }

  /**
   * Read an upstream event stream. Before the first token every problem is a
   * silent failure; after it, a streaming client has seen text, so a problem
   * becomes an interruption. A non-streaming client is never committed before
   * the whole answer is in, so for it every problem is a plain failure.
   */
  async *#consumeStream(
    plan: AttemptPlan,
    attempt: UpstreamAttempt,
    events: AsyncIterator<SseEvent>,
  ): AsyncGenerator<EngineEvent, AttemptOutcome, undefined> {
    // An aggregated completion always carries usage when the upstream sent it.
    const normalizer = new StreamNormalizer(plan.clientStream ? plan.normalize : { ...plan.normalize, includeUsage: true });
    const aggregator = plan.clientStream ? null : new CompletionAggregator();
    let committed = false;
    let ttftMs = 0;
    let sawDone = false;
    const held: ChatCompletionChunk[] = [];
    const broken = (failure: Failure): AttemptOutcome => {
      if (!normalizer.hasToken) return { kind: 'failed', failure };
      const interrupted: Failure =
        failure.class === 'stream_interrupted'
          ? failure
          : { ...failure, class: 'stream_interrupted', message: `${failure.class}: ${failure.message}` };
      return committed ? { kind: 'interrupted', failure: interrupted } : { kind: 'failed', failure: interrupted };
    };

    try {
      for (;;) {
        const next = await events.next();
        if (next.done) break;
        const event = next.value;
        if (event.kind === 'comment') continue;
        if (event.kind === 'bare') {
          // Chutes writes `{"error": …}` without `data:` when a stream dies.
          const failure = bareLineFailure(event.line);
          if (failure) return broken(failure);
          continue;
        }
        if (event.data === '[DONE]') {
          sawDone = true;
          break;
        }
        let raw: JsonObject;
        try {
          raw = JSON.parse(event.data) as JsonObject;
        } catch {
          return broken({ class: 'invalid_response', message: `malformed stream chunk: ${event.data.slice(0, 120)}` });
        }
        if (!raw || typeof raw !== 'object') {
          return broken({ class: 'invalid_response', message: 'stream chunk is not a JSON object' });
        }
        const inBand = failureFromErrorPayload(raw) ?? finishedWithError(raw);
        if (inBand) return broken(inBand);
        if (normalizer.hasToken) attempt.touch();
        let out = normalizer.push(raw);
        if (!normalizer.hasToken) {
          // E.g. encrypted reasoning_details: real output, but not yet a token to commit on.
          if (out.length > 0) held.push(...out);
          continue;
        }
        if (held.length > 0) out = held.splice(0).concat(out);
        if (ttftMs === 0) {
          ttftMs = performance.now() - plan.started;
          attempt.commit();
        }
        if (aggregator) {
          for (const chunk of out) aggregator.add(chunk);
          continue;
        }
        if (!committed) {
          committed = true;
          yield { type: 'commit', n: plan.n, endpoint: plan.endpoint.name, model: normalizer.model, ttftMs: Math.round(ttftMs) };
        }
        for (const chunk of out) yield { type: 'chunk', chunk };
      }
    } catch (err) {
      const mapped = attempt.failureFrom(err);
      if (mapped.kind === 'cancelled') return mapped;
      return broken(mapped.failure);
    }

    const tail = normalizer.end();
    if (!normalizer.hasToken) {
      return { kind: 'failed', failure: { class: 'invalid_response', message: 'stream ended before any token' } };
    }
    const finishReason = normalizer.finishReason;
    if (finishReason === null) {
      return broken({
        class: 'stream_interrupted',
        message: sawDone ? 'stream ended with [DONE] but no finish_reason' : 'stream ended without finish_reason',
      });
    }
    if (aggregator) {
      for (const chunk of tail) aggregator.add(chunk);
      const completion = aggregator.result();
      yield { type: 'commit', n: plan.n, endpoint: plan.endpoint.name, model: completion.model, ttftMs: Math.round(ttftMs) };
      yield { type: 'completion', completion };
    } else {
      for (const chunk of tail) yield { type: 'chunk', chunk };
    }
    const outcome: AttemptOutcome = { kind: 'done', ttftMs, usage: normalizer.usage, finishReason };
    if (sawDone) {
      outcome.drain = async () => {
        attempt.drainAfterDone();
        try {
          while (!(await events.next()).done) {
            // Discard: the answer is complete.
          }
        } catch {
          // The upstream lingered or reset after [DONE]: the answer was complete anyway.
        } finally {
          attempt.close();
        }
      };
    }
    return outcome;
  }
}

function recordOf(endpoint: Endpoint, failure: Failure, ms: number): AttemptRecord {
  return { endpoint: endpoint.name, class: failure.class, status: failure.status ?? null, message: failure.message, ms };
}

/** OpenRouter ends a failed stream with `finish_reason: "error"` (sometimes without an `error` object). */
function finishedWithError(raw: JsonObject): Failure | null {
  const choices = raw.choices;
  if (!Array.isArray(choices)) return null;
  const first = choices[0] as { finish_reason?: unknown } | undefined;
  return first?.finish_reason === 'error'
    ? { class: 'invalid_response', message: 'upstream ended the stream with finish_reason "error"' }
    : null;
}

function bareLineFailure(line: string): Failure | null {
  try {
    const parsed = JSON.parse(line) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? failureFromErrorPayload(parsed as JsonObject)
      : null;
  } catch {
    return null;
  }
}

function arrayIterator<T>(items: readonly T[]): AsyncIterator<T> {
  let i = 0;
  return {
    next: () => Promise.resolve(i < items.length ? { done: false, value: items[i++]! } : { done: true, value: undefined }),
  };
}
