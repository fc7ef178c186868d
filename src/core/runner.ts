/**
 * One attempt against one endpoint, as an async generator: it yields `commit`
 * at the first real token and then the normalized output, and returns how the
 * attempt ended. What a stream says is judged in stream-reading.ts. A
 * non-streaming client is never committed before the whole answer is in.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { UpstreamAttempt } from './attempt.js';
import type { Cancellation } from './cancellation.js';
import { explodeCompletion } from './openai/convert.js';
import type { NormalizeOptions } from './openai/normalize.js';
import { buildUpstreamBody, judgeCompletionBody } from './request.js';
import { StreamReading } from './stream-reading.js';
import { SseDecoder } from './sse.js';
import type { ChatRequest, Endpoint, EngineEvent, Failure, FinishReason, Usage } from './types.js';

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
  /** The request was sent a second time on a new connection (a stale kept-alive socket): why. */
  onResent?: (why: string) => void;
}

export type AttemptRun = AsyncGenerator<EngineEvent, AttemptOutcome, undefined>;

export async function* runAttempt(dispatcher: Dispatcher, plan: AttemptPlan): AttemptRun {
  const { endpoint, clientStream } = plan;
  const upstreamStream = endpoint.stream ?? clientStream;
  const attempt = new UpstreamAttempt(endpoint, plan.cancel, plan.timeoutMs, plan.onResent);
  let handedOff = false;
  try {
    const opened = await attempt.open(dispatcher, buildUpstreamBody(plan.body, endpoint, upstreamStream));
    if (opened.kind === 'failure' || opened.kind === 'cancelled') return opened.kind === 'failure' ? { kind: 'failed', failure: opened.failure } : opened;
    if (opened.kind === 'body') {
      // Some servers stream without the event-stream content type.
      if (!opened.text.trimStart().startsWith('data:')) {
        const answer = answerFromBody(plan, opened.text, opened.contentType);
        for (const event of answer.events) yield event;
        return answer.outcome;
      }
      const decoder = new SseDecoder();
      attempt.replay([...decoder.push(Buffer.from(opened.text)), ...decoder.end()]);
    }

    // The stream, read by one generator (each level of `yield*` costs every event).
    const reading = new StreamReading(plan);
    try {
      while (!reading.sawDone) {
        // The watchdog times the upstream's silence, not our consumer (see hold()).
        if (reading.hasToken) attempt.touch();
        const events = await attempt.nextEvents();
        if (events === null) break;
        const hadToken = reading.ttftMs !== 0;
        const out = reading.read(events);
        if (!Array.isArray(out)) return out;
        if (!hadToken && reading.ttftMs !== 0) attempt.commit();
        if (out.length === 0) continue;
        // Chunks of one read go out together: the client gets them in one write.
        attempt.hold();
        if (!reading.committed) yield reading.commit();
        yield { type: 'chunks', chunks: out };
      }
    } catch (err) {
      const mapped = attempt.failureFrom(err);
      return mapped.kind === 'cancelled' ? mapped : reading.broken(mapped.failure);
    }
    const { events, end } = reading.end();
    for (const event of events) yield event;
    if (end.kind !== 'done' || !reading.sawDone) return end;
    handedOff = true;
    return {
      ...end,
      drain: async () => {
        attempt.drainAfterDone();
        try {
          while ((await attempt.nextEvents()) !== null) {
            // Discard: the answer is complete.
          }
        } catch {
          // The upstream lingered or reset after [DONE]: the answer was complete anyway.
        } finally {
          attempt.close();
        }
      },
    };
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
