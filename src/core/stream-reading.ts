/**
 * Reading one upstream event stream, one network read at a time, as a
 * synchronous state machine: the attempt's generator (runner.ts) only awaits
 * the reads and hands the results on. Before the first token every problem is
 * a silent failure; after it a streaming client has seen text, so a problem
 * is an interruption.
 */
import { performance } from 'node:perf_hooks';
import { jsonrepair } from 'jsonrepair';
import { failureFromErrorPayload } from './classify.js';
import { CompletionAggregator } from './openai/convert.js';
import { refusalFailure, StreamNormalizer, type NormalizeOptions } from './openai/normalize.js';
import type { SseEvent } from './sse.js';
import type { ChatCompletionChunk, EngineEvent, Failure, FinishReason, JsonObject, Usage } from './types.js';

/** How an attempt ended, as far as its stream tells (the runner adds the connection's part). */
export type ReadingEnd =
  | { kind: 'failed'; failure: Failure }
  | { kind: 'interrupted'; failure: Failure }
  | { kind: 'done'; ttftMs: number; usage: Usage | null; finishReason: FinishReason };

/** What it needs of the attempt's plan (runner.ts passes the plan itself). */
export interface ReadingPlan {
  n: number;
  endpoint: { name: string };
  clientStream: boolean;
  normalize: NormalizeOptions;
  /** performance.now() when the attempt started. */
  started: number;
  acceptContentFilter: boolean;
}

export class StreamReading {
  readonly #plan: ReadingPlan;
  readonly #normalizer: StreamNormalizer;
  /** A non-streaming client gets the stream as one completion. */
  readonly #aggregator: CompletionAggregator | null;
  /** Output before the first token (e.g. encrypted reasoning), sent with it. */
  #held: ChatCompletionChunk[] = [];
  /** The commit event went out (streaming client). */
  committed = false;
  /** Milliseconds from the attempt's start to its first token; 0 before it. */
  ttftMs = 0;
  /** `[DONE]` was read: what follows is only drained. */
  sawDone = false;

  constructor(plan: ReadingPlan) {
    this.#plan = plan;
    this.#normalizer = new StreamNormalizer(plan.normalize);
    this.#aggregator = plan.clientStream ? null : new CompletionAggregator();
  }

  /**
   * A real token was seen (the commit point; the watchdog then times silence
   * between chunks). A refusal is one only when it is taken as the answer.
   */
  get hasToken(): boolean {
    const normalizer = this.#normalizer;
    return normalizer.hasToken || (this.#plan.acceptContentFilter && normalizer.refused);
  }

  /** The stream has more than choice 0 (`n > 1`). */
  get multiChoice(): boolean {
    return this.#normalizer.multiChoice;
  }

  /**
   * The events of one network read: the chunks to forward now (empty before
   * the first token, and always for a non-streaming client), or how the
   * attempt ended when the stream carried a failure.
   */
  read(events: readonly SseEvent[]): ChatCompletionChunk[] | ReadingEnd {
    const normalizer = this.#normalizer;
    let out: ChatCompletionChunk[] = [];
    for (const event of events) {
      if (event.kind === 'comment') continue;
      if (event.kind === 'bare') {
        // Chutes writes `{"error": …}` without `data:` when a stream dies.
        const failure = bareLineFailure(event.line);
        if (failure) return this.broken(failure);
        continue;
      }
      if (event.data === '[DONE]') {
        this.sawDone = true;
        break;
      }
      const raw = parseChunk(event.data);
      if (raw === null) {
        return this.broken({ class: 'invalid_response', message: `malformed stream chunk: ${event.data.slice(0, 120)}` });
      }
      const inBand = failureFromErrorPayload(raw) ?? finishedWithError(raw);
      if (inBand) return this.broken(inBand);
      const pushed = normalizer.push(raw);
      if (pushed.length > 0) out = out.length === 0 ? pushed : out.concat(pushed);
    }
    if (!this.hasToken) {
      // E.g. encrypted reasoning_details, or a refusal while failover is on:
      // real output, but not yet a token to commit on.
      if (out.length > 0) this.#held.push(...out);
      return [];
    }
    if (this.#held.length > 0) out = this.#held.splice(0).concat(out);
    if (this.ttftMs === 0) this.ttftMs = performance.now() - this.#plan.started;
    if (this.#aggregator) {
      for (const chunk of out) this.#aggregator.add(chunk);
      return [];
    }
    return out;
  }

  /** The commit event, sent before the first chunks a streaming client gets. */
  commit(): EngineEvent {
    this.committed = true;
    const ttftMs = this.ttftMs === 0 ? performance.now() - this.#plan.started : this.ttftMs;
    return { type: 'commit', n: this.#plan.n, endpoint: this.#plan.endpoint.name, model: this.#normalizer.model, ttftMs: Math.round(ttftMs) };
  }

  /** The stream ended (its body, or `[DONE]`): the last events and how the attempt ended. */
  end(): { events: EngineEvent[]; end: ReadingEnd } {
    const normalizer = this.#normalizer;
    const plan = this.#plan;
    const tail = normalizer.end();
    const finishReason = normalizer.finishReason;
    if (!this.hasToken) {
      if (finishReason !== null && normalizer.refused) {
        // A refusal is the provider's deliberate answer: failed over, but kept for the client.
        const refusal = new CompletionAggregator();
        for (const chunk of this.#held) refusal.add(chunk);
        for (const chunk of tail) refusal.add(chunk);
        const answer = refusal.result();
        // A streaming client's chunks leave usage to the engine; the kept answer carries it.
        if (answer.usage === undefined && normalizer.usage !== null) answer.usage = normalizer.usage;
        return { events: [], end: { kind: 'failed', failure: refusalFailure(answer) } };
      }
      if (finishReason === 'content_filter' && !plan.acceptContentFilter) {
        return { events: [], end: { kind: 'failed', failure: { class: 'content_filter', message: 'the provider stopped the answer with finish_reason "content_filter"' } } };
      }
      if (!(finishReason === 'content_filter' && plan.acceptContentFilter)) {
        return { events: [], end: { kind: 'failed', failure: { class: 'invalid_response', message: 'stream ended before any token' } } };
      }
    }
    if (finishReason === null) {
      const message = this.sawDone ? 'stream ended with [DONE] but no finish_reason' : 'stream ended without finish_reason';
      return { events: [], end: this.broken({ class: 'stream_interrupted', message }) };
    }
    if (this.#held.length > 0) tail.unshift(...this.#held.splice(0));
    const events: EngineEvent[] = [];
    if (this.#aggregator) {
      for (const chunk of tail) this.#aggregator.add(chunk);
      const completion = this.#aggregator.result();
      events.push(
        { type: 'commit', n: plan.n, endpoint: plan.endpoint.name, model: completion.model, ttftMs: Math.round(this.ttftMs) },
        { type: 'completion', completion },
      );
    } else {
      // Only an accepted content-filter stop or refusal gets here uncommitted, without a token.
      if (!this.committed) events.push(this.commit());
      if (tail.length > 0) events.push({ type: 'chunks', chunks: tail });
    }
    return { events, end: { kind: 'done', ttftMs: this.ttftMs, usage: normalizer.usage, finishReason } };
  }

  /** A failure inside the stream (or of its connection): silent before the first token, an interruption after. */
  broken(failure: Failure): ReadingEnd {
    if (!this.hasToken) return { kind: 'failed', failure };
    const interrupted: Failure =
      failure.class === 'stream_interrupted'
        ? failure
        : { ...failure, class: 'stream_interrupted', message: `${failure.class}: ${failure.message}` };
    return this.committed ? { kind: 'interrupted', failure: interrupted } : { kind: 'failed', failure: interrupted };
  }
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
  for (const choice of choices) {
    if ((choice as { finish_reason?: unknown } | null)?.finish_reason === 'error') {
      return { class: 'invalid_response', message: 'upstream ended the stream with finish_reason "error"' };
    }
  }
  return null;
}

function bareLineFailure(line: string): Failure | null {
  try {
    const parsed = JSON.parse(line) as unknown;
    return isObject(parsed) ? failureFromErrorPayload(parsed) : null;
  } catch {
    return null;
  }
}
