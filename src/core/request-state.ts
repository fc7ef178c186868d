/**
 * The state of one request while the engine serves it, and the steps both
 * halves of the engine share: start an attempt, record how it failed, build
 * the summaries and the ending events. The race before commit (race.ts) and
 * the stream after commit (after-commit.ts) each drive it; neither keeps
 * state of its own beyond one call.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { Cancellation } from './cancellation.js';
import type { ClientStream } from './client-stream.js';
import { endpointKey, type HealthTracker } from './health.js';
import type { LaneHold } from './limits.js';
import type { NormalizeOptions } from './openai/normalize.js';
import { buildAllFailed, interruptedError, type FailedAttempt } from './outcome.js';
import { resolveOptions, retryDelay, type ResolvedOptions, type RetryBudget } from './resilience.js';
import { routingOf, type Routing } from './routing.js';
import { runAttempt, type AttemptOutcome, type AttemptRun } from './runner.js';
import type { AttemptRecord, ChatRequest, Endpoint, EngineEvent, Failure, Group, RequestSummary, Usage } from './types.js';

/** What the engine was asked to serve (see `FailoverEngine.run`). */
export interface EngineRequest {
  /** Correlates events, logs and the `x-request-id` header. */
  requestId: string;
  group: Group;
  /** The client's request; `stream: true` makes the engine emit chunks, else one completion. */
  body: ChatRequest;
  /**
   * Aborting it (client gone, Ctrl-C) aborts the upstream request at once. The
   * server passes a `Cancellation`, which costs no EventTarget per request.
   */
  signal?: AbortSignal | Cancellation;
  /**
   * The client's session id (the server passes `x-session-id` or an agent's
   * session header): keeps a conversation on one lane (sticky sessions).
   */
  sessionId?: string;
}

/** An endpoint waiting its turn in this request. */
export interface Candidate {
  endpoint: Endpoint;
  cooling: boolean;
  /** Retries of this endpoint so far in this request. */
  retry: number;
  /** performance.now() before which it must not start (backoff, Retry-After). */
  notBefore: number;
  /** A retry without a parameter the endpoint rejected (shims.ts): once per request. */
  shimmed?: boolean;
}

export type Step = IteratorResult<EngineEvent, AttemptOutcome>;

/** An attempt under way. */
export interface Running {
  candidate: Candidate;
  n: number;
  run: AttemptRun;
  cancel: Cancellation;
  /** Its place on a counted lane (key pool, limits); null when the lane is not counted. */
  hold: LaneHold | null;
  started: number;
  /** The attempt holds the endpoint's half-open probe. */
  probe: boolean;
  /** Set when the request had to be resent on a new connection (see socket-reuse.ts). */
  resent?: string;
  /** The attempt's first step (its commit, or how it ended), raced against the others. */
  first: Promise<{ running: Running; step: Step }>;
}

export type DoneOutcome = Extract<AttemptOutcome, { kind: 'done' }>;

export class RequestState {
  readonly dispatcher: Dispatcher;
  readonly health: HealthTracker;
  readonly budget: RetryBudget;
  readonly request: EngineRequest;
  readonly group: Group;
  readonly options: ResolvedOptions;
  readonly clientStream: boolean;
  readonly includeUsage: boolean;
  readonly started = performance.now();
  readonly records: AttemptRecord[] = [];
  /** Failures before commit: what the all-failed answer is made of. */
  readonly failed: FailedAttempt[] = [];
  readonly queue: Candidate[];
  readonly routing: Routing;
  /** The conversation this request belongs to, when sticky sessions apply. */
  readonly session: string | null;
  /** Set when the client goes away or the deadline passes; aborts every live attempt. */
  readonly abort = new Cancellation();
  // One or two entries each: exact-size arrays replaced on change, not Sets or
  // pushed-to arrays (room for ~16 kept for as long as a stream stays open).
  live: Running[] = [];
  tried: Endpoint[] = [];
  deadlineHit = false;
  /** A lane slot taken by admission (admission.ts) for the attempt about to start. */
  reserved: { endpoint: Endpoint; hold: LaneHold } | null = null;
  #n = 0;

  constructor(dispatcher: Dispatcher, health: HealthTracker, budget: RetryBudget, request: EngineRequest) {
    this.dispatcher = dispatcher;
    this.health = health;
    this.budget = budget;
    this.request = request;
    this.group = request.group;
    this.options = resolveOptions(request.group);
    this.clientStream = request.body.stream === true;
    this.includeUsage = this.clientStream && request.body.stream_options?.include_usage === true;
    // A literal, not `{ ...p, retry: 0, notBefore: 0 }`: in Node 20's V8 a spread
    // followed by new keys gives every object its own hidden class (~250 bytes
    // per candidate, kept for the whole request).
    this.routing = routingOf(health);
    const route = this.routing.route(request, (lane) => health.snapshot(lane).state === 'ok');
    this.session = route.session;
    this.queue = health.plan(route.endpoints).map((p) => ({ endpoint: p.endpoint, cooling: p.cooling, retry: 0, notBefore: 0 }));
  }

  /** Start an attempt on `candidate` with `body` (the client's request, or a resume of it). */
  start(candidate: Candidate, body: ChatRequest = this.request.body): { running: Running; event: EngineEvent } {
    const { endpoint } = candidate;
    this.#n += 1;
    if (!this.tried.includes(endpoint)) this.tried = [...this.tried, endpoint];
    const cancel = new Cancellation();
    const probe = this.health.beginAttempt(endpoint);
    const started = performance.now();
    const remaining = this.options.deadlineMs === null ? Infinity : this.options.deadlineMs - (started - this.started);
    const run = runAttempt(this.dispatcher, {
      endpoint,
      n: this.#n,
      body,
      clientStream: this.clientStream,
      normalize: this.#normalizeOptions(endpoint),
      started,
      timeoutMs: Math.max(1, Math.min(endpoint.timeoutMs, remaining)),
      cancel,
      acceptContentFilter: !this.options.failoverOnContentFilter,
      onResent: (why) => (running.resent = why),
    });
    let hold: LaneHold | null;
    if (this.reserved?.endpoint === endpoint) {
      hold = this.reserved.hold;
      this.reserved = null;
    } else hold = this.routing.begin(this.group, endpoint, body);
    // Whichever way the attempt ends (forgotten, or aborted with the request), its lane is freed once.
    if (hold) cancel.onAbort(() => this.routing.limits.release(hold));
    const running = { candidate, n: this.#n, run, cancel, started, probe, hold } as Running;
    running.first = run.next().then((step) => ({ running, step }));
    this.live = [...this.live, running];
    if (this.abort.aborted) cancel.abort();
    return {
      running,
      event: { type: 'attempt_start', n: this.#n, endpoint: endpoint.name, model: endpoint.model, cooling: candidate.cooling },
    };
  }

  #normalizeOptions(endpoint: Endpoint): NormalizeOptions {
    return {
      reasoning: this.group.reasoning,
      thinkOpen: endpoint.thinkOpen === true,
      // Streaming clients get usage from the engine (summed over resumes); a completion carries its own.
      includeUsage: !this.clientStream,
      fallbackId: `chatcmpl-${this.request.requestId}`,
      fallbackCreated: Math.floor(Date.now() / 1000),
      fallbackModel: endpoint.model,
    };
  }

  /** The attempt no longer runs (it ended, or was stopped). */
  forget(running: Running): void {
    this.live = without(this.live, running);
    if (running.hold) this.routing.limits.release(running.hold);
  }

  recordFailure(running: Running, failure: Failure, afterCommit: boolean): EngineEvent {
    const { endpoint } = running.candidate;
    const ms = Math.round(performance.now() - running.started);
    this.health.recordFailure(endpoint, failure, this.group.cooldown);
    this.budget.record(endpointKey(endpoint));
    this.#record(running, { endpoint: endpoint.name, class: failure.class, status: failure.status ?? null, message: failure.message, ms });
    if (!afterCommit) this.failed.push({ endpoint: endpoint.name, failure, ms });
    return { type: 'attempt_failed', n: running.n, endpoint: endpoint.name, failure, ms, afterCommit };
  }

  #record(running: Running, record: AttemptRecord): void {
    if (running.resent !== undefined) record.resent = running.resent;
    this.records.push(record);
  }

  /** The same endpoint again after `failure`, when the retry policy allows another try; else null. */
  retryOf(candidate: Candidate, failure: Failure): Candidate | null {
    const delay = retryDelay(failure, candidate.retry, this.options.retry);
    if (delay === null || !this.budget.allows(endpointKey(candidate.endpoint))) return null;
    return { ...candidate, retry: candidate.retry + 1, notBefore: performance.now() + delay };
  }

  /** The attempt answered completely: count the success and end the request. */
  async *finishDone(running: Running, outcome: DoneOutcome, client: ClientStream): AsyncGenerator<EngineEvent, void, undefined> {
    const { endpoint } = running.candidate;
    this.routing.succeeded(this.group, endpoint, this.session, outcome.ttftMs, outcome.usage, running.hold);
    this.health.recordSuccess(endpoint);
    this.#record(running, { endpoint: endpoint.name, class: null, status: null, message: null, ms: Math.round(performance.now() - running.started) });
    let usage = outcome.usage;
    if (this.clientStream) {
      client.addUsage(outcome.usage);
      usage = client.usage;
      const usageChunk = this.includeUsage ? client.usageChunk() : null;
      if (usageChunk) yield { type: 'chunks', chunks: [usageChunk] };
    }
    const ttft = Math.round(running.started - this.started + outcome.ttftMs);
    try {
      yield { type: 'done', summary: this.summary(endpoint.name, ttft, usage), finishReason: outcome.finishReason };
    } finally {
      // Also when the consumer stops iterating at `done`.
      if (outcome.drain) await outcome.drain();
    }
  }

  /** The in-band end of a committed stream that broke (SPEC §3.4). */
  interrupted(endpoint: Endpoint, failure: Failure, note?: string): EngineEvent {
    const interrupted: Failure = failure.class === 'stream_interrupted' ? failure : { ...failure, class: 'stream_interrupted' };
    return { type: 'interrupted', summary: this.summary(endpoint.name, null), failure: interrupted, error: interruptedError(interrupted, note) };
  }

  /** Nothing was committed and nothing is left to try (SPEC §3.8). */
  allFailed(): EngineEvent {
    const deadlineMs = this.deadlineHit ? this.options.deadlineMs : null;
    const coolingMs = this.health.coolingFor(this.group.endpoints);
    return { type: 'failed', summary: this.summary(null, null), ...buildAllFailed(this.group.name, this.failed, this.group.skipped, deadlineMs, coolingMs) };
  }

  /** The request ended from outside: the client went away, or the deadline passed. */
  endAborted(endpoint: Endpoint | null, committed: boolean): EngineEvent {
    if (!this.deadlineHit) return { type: 'cancelled', summary: this.summary(null, null) };
    if (committed && endpoint) {
      const deadlineS = (this.options.deadlineMs ?? 0) / 1000;
      return this.interrupted(endpoint, { class: 'timeout', message: `the request deadline of ${deadlineS} s was reached` });
    }
    return this.allFailed();
  }

  summary(endpoint: string | null, ttftMs: number | null, usage: Usage | null = null): RequestSummary {
    return {
      requestId: this.request.requestId,
      group: this.group.name,
      stream: this.clientStream,
      endpoint,
      attempts: this.records,
      ms: Math.round(performance.now() - this.started),
      ttftMs,
      usage,
    };
  }
}

export function without<T>(list: T[], item: T): T[] {
  return list.includes(item) ? list.filter((x) => x !== item) : list;
}
