/**
 * One attempt against one endpoint, as an async generator: it yields `commit`
 * at the first real token and then the normalized output, and returns how the
 * attempt ended. Before the first token every problem is a silent failure;
 * after it a streaming client has seen text, so a problem is an interruption.
 * A non-streaming client is never committed before the whole answer is in.
 */
import { performance } from 'node:perf_hooks';
import { jsonrepair } from 'jsonrepair';
import type { Dispatcher } from 'undici';
import { UpstreamAttempt } from './attempt.js';
import type { Cancellation } from './cancellation.js';
import { failureFromErrorPayload } from './classify.js';
import { CompletionAggregator, explodeCompletion } from './openai/convert.js';
import { StreamNormalizer, type NormalizeOptions } from './openai/normalize.js';
import { buildUpstreamBody, judgeCompletionBody } from './request.js';
import { SseDecoder, type SseEvent } from './sse.js';
import type { ChatCompletionChunk, ChatRequest, Endpoint, EngineEvent, Failure, FinishReason, JsonObject, Usage } from './types.js';

export type AttemptOutcome =
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

export interface AttemptPlan {
  endpoint: Endpoint;
  n: number;
  /** What to send (the client's request, or a resume of it). */
  body: ChatRequest;
  clientStream: boolean;
  normalize: NormalizeOptions;
  /** performance.now() when the attempt started. */
  started: number;
  timeoutMs: number;
  /** Aborting it ends the attempt (client gone, deadline, a hedge that lost). */
  cancel: Cancellation;
  /** `failover_on_content_filter: false`: an empty answer stopped by the filter is the answer. */
  acceptContentFilter: boolean;
}

export type AttemptRun = AsyncGenerator<EngineEvent, AttemptOutcome, undefined>;

export async function* runAttempt(dispatcher: Dispatcher, plan: AttemptPlan): AttemptRun {
  const { endpoint, clientStream } = plan;
  const upstreamStream = endpoint.stream ?? clientStream;
  const attempt = new UpstreamAttempt(endpoint, plan.cancel, plan.timeoutMs);
  let handedOff = false;
  try {
    const opened = await attempt.open(dispatcher, buildUpstreamBody(plan.body, endpoint, upstreamStream));
    if (opened.kind === 'failure' || opened.kind === 'cancelled') return opened.kind === 'failure' ? { kind: 'failed', failure: opened.failure } : opened;
    if (opened.kind === 'body') {
      // Some servers stream without the event-stream content type.
      if (opened.text.trimStart().startsWith('data:')) {
        const decoder = new SseDecoder();
        let batch: SseEvent[] | null = [...decoder.push(Buffer.from(opened.text)), ...decoder.end()];
        const once = (): Promise<SseEvent[] | null> => {
          const events = batch;
          batch = null;
          return Promise.resolve(events);
        };
        return yield* consumeStream(plan, attempt, once);
      }
      const answer = answerFromBody(plan, opened.text, opened.contentType);
      for (const event of answer.events) yield event;
      return answer.outcome;
    }
    const outcome = yield* consumeStream(plan, attempt, () => attempt.nextEvents());
    if (outcome.kind === 'done' && outcome.drain) handedOff = true;
    return outcome;
  } finally {
    if (!handedOff) attempt.close();
  }
}

/**
 * A complete upstream body: validate, then answer as a completion or as a
 * replayed stream. Synchronous, so its events cost no generator of their own.
 */
function answerFromBody(plan: AttemptPlan, text: string, contentType: string): { events: EngineEvent[]; outcome: AttemptOutcome } {
  const verdict = judgeCompletionBody(text, contentType, plan.normalize, plan.acceptContentFilter);
  if ('failure' in verdict) return { events: [], outcome: { kind: 'failed', failure: verdict.failure } };
  const { completion } = verdict;
  const ttftMs = performance.now() - plan.started;
  const commit: EngineEvent = { type: 'commit', n: plan.n, endpoint: plan.endpoint.name, model: completion.model, ttftMs: Math.round(ttftMs) };
  // Usage reaches a streaming client from the engine, summed over resumed attempts.
  const answer: EngineEvent = plan.clientStream
    ? { type: 'chunks', chunks: explodeCompletion(completion, { includeUsage: false }) }
    : { type: 'completion', completion };
  const choice = completion.choices[0];
  return { events: [commit, answer], outcome: { kind: 'done', ttftMs, usage: completion.usage ?? null, finishReason: choice?.finish_reason ?? 'stop' } };
}

/** `nextEvents` gives the events of one network read at a time, null at the end. */
async function* consumeStream(plan: AttemptPlan, attempt: UpstreamAttempt, nextEvents: () => Promise<SseEvent[] | null>): AttemptRun {
  // Streaming clients get usage from the engine; an aggregated completion carries it itself.
  const normalizer = new StreamNormalizer({ ...plan.normalize, includeUsage: !plan.clientStream });
  const aggregator = plan.clientStream ? null : new CompletionAggregator();
  const held: ChatCompletionChunk[] = [];
  let committed = false;
  let ttftMs = 0;
  let sawDone = false;
  const broken = (failure: Failure): AttemptOutcome => {
    if (!normalizer.hasToken) return { kind: 'failed', failure };
    const interrupted: Failure =
      failure.class === 'stream_interrupted'
        ? failure
        : { ...failure, class: 'stream_interrupted', message: `${failure.class}: ${failure.message}` };
    return committed ? { kind: 'interrupted', failure: interrupted } : { kind: 'failed', failure: interrupted };
  };

  try {
    reading: for (;;) {
      // The watchdog times the upstream's silence, not our consumer (see hold()).
      if (normalizer.hasToken) attempt.touch();
      const events = await nextEvents();
      if (events === null) break;
      // Chunks of one read go out together: the client gets them in one write.
      let out: ChatCompletionChunk[] = [];
      for (const event of events) {
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
        const raw = parseChunk(event.data);
        if (raw === null) {
          return broken({ class: 'invalid_response', message: `malformed stream chunk: ${event.data.slice(0, 120)}` });
        }
        const inBand = failureFromErrorPayload(raw) ?? finishedWithError(raw);
        if (inBand) return broken(inBand);
        const pushed = normalizer.push(raw);
        if (pushed.length > 0) out = out.length === 0 ? pushed : out.concat(pushed);
      }
      if (!normalizer.hasToken) {
        // E.g. encrypted reasoning_details: real output, but not yet a token to commit on.
        if (out.length > 0) held.push(...out);
        if (sawDone) break;
        continue;
      }
      if (held.length > 0) out = held.splice(0).concat(out);
      if (ttftMs === 0) {
        ttftMs = performance.now() - plan.started;
        attempt.commit();
      }
      if (aggregator) {
        for (const chunk of out) aggregator.add(chunk);
      } else if (out.length > 0) {
        attempt.hold();
        if (!committed) {
          committed = true;
          yield { type: 'commit', n: plan.n, endpoint: plan.endpoint.name, model: normalizer.model, ttftMs: Math.round(ttftMs) };
        }
        yield { type: 'chunks', chunks: out };
      }
      if (sawDone) break reading;
    }
  } catch (err) {
    const mapped = attempt.failureFrom(err);
    if (mapped.kind === 'cancelled') return mapped;
    return broken(mapped.failure);
  }

  const tail = normalizer.end();
  const finishReason = normalizer.finishReason;
  if (!normalizer.hasToken) {
    if (finishReason === 'content_filter' && !plan.acceptContentFilter) {
      return { kind: 'failed', failure: { class: 'content_filter', message: 'the provider stopped the answer with finish_reason "content_filter"' } };
    }
    if (!(finishReason === 'content_filter' && plan.acceptContentFilter)) {
      return { kind: 'failed', failure: { class: 'invalid_response', message: 'stream ended before any token' } };
    }
  }
  if (finishReason === null) {
    return broken({
      class: 'stream_interrupted',
      message: sawDone ? 'stream ended with [DONE] but no finish_reason' : 'stream ended without finish_reason',
    });
  }
  if (held.length > 0) tail.unshift(...held.splice(0));
  if (aggregator) {
    for (const chunk of tail) aggregator.add(chunk);
    const completion = aggregator.result();
    yield { type: 'commit', n: plan.n, endpoint: plan.endpoint.name, model: completion.model, ttftMs: Math.round(ttftMs) };
    yield { type: 'completion', completion };
  } else {
    if (!committed) {
      // Only an accepted content-filter stop gets here without a token.
      yield { type: 'commit', n: plan.n, endpoint: plan.endpoint.name, model: normalizer.model, ttftMs: Math.round(performance.now() - plan.started) };
    }
    if (tail.length > 0) yield { type: 'chunks', chunks: tail };
  }
  const outcome: AttemptOutcome = { kind: 'done', ttftMs, usage: normalizer.usage, finishReason };
  if (sawDone) {
    outcome.drain = async () => {
      attempt.drainAfterDone();
      try {
        while ((await nextEvents()) !== null) {
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

/**
 * A chunk's JSON; a chunk that is complete but malformed (a stray quote, a
 * trailing comma) is repaired in place. A cut-off chunk is not "completed":
 * that would invent text.
 */
function parseChunk(data: string): JsonObject | null {
  try {
    const value = JSON.parse(data) as unknown;
    return isObject(value) ? value : null;
  } catch {
    const trimmed = data.trimEnd();
    if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) return null;
    try {
      const value = JSON.parse(jsonrepair(trimmed)) as unknown;
      return isObject(value) && Array.isArray(value.choices) ? value : null;
    } catch {
      return null;
    }
  }
}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
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
    return isObject(parsed) ? failureFromErrorPayload(parsed) : null;
  } catch {
    return null;
  }
}
