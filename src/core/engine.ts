/**
 * The failover engine (SPEC §3): walks a group's endpoints, commits to the
 * first that produces a real token, and reports everything it does as typed
 * events. Nothing here knows about HTTP servers, terminals or files.
 *
 * `run()` is an async generator, so a slow consumer naturally pauses the
 * upstream read (backpressure) and stopping the iteration releases it.
 *
 * Resilience options (SPEC §3.11) live here too: same-endpoint retries with
 * backoff, hedged attempts (the first to commit wins), a request deadline,
 * and resuming a committed stream that broke from the next attempt.
 */
import { performance } from 'node:perf_hooks';
import { Agent, type Dispatcher } from 'undici';
import { Cancellation, sleep } from './cancellation.js';
import { ClientStream, ResumeFilter, type ResumeMode } from './client-stream.js';
import { endpointKey, HealthTracker } from './health.js';
import type { NormalizeOptions } from './openai/normalize.js';
import { buildAllFailed, contentFilterError, interruptedError, type FailedAttempt } from './outcome.js';
import { registerSecrets } from './redact.js';
import { resolveOptions, retryDelay, RetryBudget, type ResolvedOptions } from './resilience.js';
import { runAttempt, type AttemptOutcome, type AttemptRun } from './runner.js';
import type {
  AttemptRecord,
  ChatCompletionChunk,
  ChatRequest,
  Endpoint,
  EngineEvent,
  Failure,
  Group,
  RequestSummary,
  Usage,
} from './types.js';

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
  /**
   * Aborting it (client gone, Ctrl-C) aborts the upstream request at once. The
   * server passes a `Cancellation`, which costs no EventTarget per request.
   */
  signal?: AbortSignal | Cancellation;
}

/** Groups whose keys the redactor already knows (a reload makes a new group object). */
const registeredGroups = new WeakSet<Group>();

interface Candidate {
  endpoint: Endpoint;
  cooling: boolean;
  /** Retries of this endpoint so far in this request. */
  retry: number;
  /** performance.now() before which it must not start (backoff, Retry-After). */
  notBefore: number;
}

type Step = IteratorResult<EngineEvent, AttemptOutcome>;

interface Running {
  candidate: Candidate;
  n: number;
  run: AttemptRun;
  cancel: Cancellation;
  started: number;
  probe: boolean;
  /** The attempt's first step (its commit, or how it ended), raced against the others. */
  first: Promise<{ running: Running; step: Step }>;
}

type Race = { kind: 'step'; running: Running; step: Step } | { kind: 'hedge' } | { kind: 'abort' };

export class FailoverEngine {
  readonly health: HealthTracker;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #budget = new RetryBudget();

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
  run(request: EngineRequest): AsyncGenerator<EngineEvent, void, undefined> {
    if (!registeredGroups.has(request.group)) {
      registerSecrets(request.group.endpoints.map((e) => e.apikey));
      registeredGroups.add(request.group);
    }
    return new RequestRun(this.#dispatcher, this.health, this.#budget, request).events();
  }

  /** Close the engine's own upstream connections. */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }
}

/** The state of one request while the engine serves it. */
class RequestRun {
  readonly #dispatcher: Dispatcher;
  readonly #health: HealthTracker;
  readonly #budget: RetryBudget;
  readonly #request: EngineRequest;
  readonly #group: Group;
  readonly #options: ResolvedOptions;
  readonly #clientStream: boolean;
  readonly #includeUsage: boolean;
  readonly #started = performance.now();
  readonly #records: AttemptRecord[] = [];
  readonly #failed: FailedAttempt[] = [];
  readonly #queue: Candidate[];
  /** Set when the client goes away or the deadline passes; aborts every live attempt. */
  readonly #abort = new Cancellation();
  // One or two entries each: exact-size arrays replaced on change, not Sets or
  // pushed-to arrays (room for ~16 kept for as long as a stream stays open).
  #live: Running[] = [];
  #tried: Endpoint[] = [];
  #deadlineHit = false;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #n = 0;

  constructor(dispatcher: Dispatcher, health: HealthTracker, budget: RetryBudget, request: EngineRequest) {
    this.#dispatcher = dispatcher;
    this.#health = health;
    this.#budget = budget;
    this.#request = request;
    this.#group = request.group;
    this.#options = resolveOptions(request.group);
    this.#clientStream = request.body.stream === true;
    this.#includeUsage = this.#clientStream && request.body.stream_options?.include_usage === true;
    // A literal, not `{ ...p, retry: 0, notBefore: 0 }`: in Node 20's V8 a spread
    // followed by new keys gives every object its own hidden class (~250 bytes
    // per candidate, kept for the whole request).
    this.#queue = health.plan(request.group.endpoints).map((p) => ({ endpoint: p.endpoint, cooling: p.cooling, retry: 0, notBefore: 0 }));
  }

  async *events(): AsyncGenerator<EngineEvent, void, undefined> {
    const onClientAbort = (): void => this.#abort.abort();
    const signal = this.#request.signal;
    let offClient: (() => void) | undefined;
    if (signal instanceof Cancellation) offClient = signal.onAbort(onClientAbort);
    else if (signal) {
      if (signal.aborted) this.#abort.abort();
      signal.addEventListener('abort', onClientAbort, { once: true });
      offClient = () => signal.removeEventListener('abort', onClientAbort);
    }
    this.#abort.onAbort(() => {
      for (const running of this.#live) running.cancel.abort();
    });
    if (this.#options.deadlineMs !== null) {
      this.#deadlineTimer = setTimeout(() => {
        this.#deadlineHit = true;
        this.#abort.abort();
      }, this.#options.deadlineMs);
    }
    // One generator from here to the attempt: every level of `yield*` costs
    // each event a few promise turns.
    try {
      const winner = yield* this.#untilCommit();
      if (!winner) return;
      const { running, commit } = winner;
      yield commit;
      const client = new ClientStream(this.#clientStream && this.#options.resume);
      // Forward the winner's output until it ends (a resume pipes through a filter instead).
      let outcome: AttemptOutcome;
      for (;;) {
        const step = await running.run.next();
        if (step.done) {
          this.#live = without(this.#live, running);
          outcome = step.value;
          break;
        }
        const event = step.value;
        if (event.type === 'chunks') for (const chunk of event.chunks) client.stamp(chunk);
        yield event;
      }
      const endpoint = running.candidate.endpoint;
      switch (outcome.kind) {
        case 'done':
          yield* this.#finishDone(running, outcome, client);
          return;
        case 'cancelled':
          yield* this.#endAborted(endpoint, true);
          return;
        case 'interrupted':
        case 'failed': {
          yield this.#recordFailure(running, outcome.failure, true);
          if (!this.#canResume(client)) {
            yield this.#interrupted(endpoint, outcome.failure);
            return;
          }
          const resumed = yield* this.#resume(running.candidate, outcome.failure, client);
          if (resumed === null) return;
          if (resumed.outcome.kind === 'done') yield* this.#finishDone(resumed.running, resumed.outcome, client);
          else yield* this.#endAborted(resumed.running.candidate.endpoint, true);
          return;
        }
      }
    } finally {
      clearTimeout(this.#deadlineTimer);
      offClient?.();
      // The consumer stopped early: nothing may keep running upstream.
      for (const running of this.#live) running.cancel.abort();
    }
  }

  // -------------------------------------------------------------------------
  // Before commit: ordered attempts, retries, hedging.

  async *#untilCommit(): AsyncGenerator<EngineEvent, { running: Running; commit: EngineEvent } | null, undefined> {
    const running: Running[] = [];
    let hedgeAt = Infinity;
    for (;;) {
      if (this.#abort.aborted) {
        yield* this.#abandon(running, this.#deadlineHit ? 'deadline reached' : 'request cancelled');
        yield* this.#endAborted(null, false);
        return null;
      }
      if (running.length === 0) {
        const candidate = this.#queue.shift();
        if (!candidate) break;
        const wait = candidate.notBefore - performance.now();
        if (wait > 0 && !(await sleep(wait, this.#abort))) {
          this.#queue.unshift(candidate);
          continue;
        }
        const started = this.#start(candidate);
        running.push(started.running);
        yield started.event;
        hedgeAt = this.#hedgeAt(started.running);
        continue;
      }

      // A hedge that is already due (a half-open probe) starts without waiting on anything.
      const race: Race = hedgeAt <= performance.now() ? { kind: 'hedge' } : await this.#race(running, hedgeAt);
      if (race.kind === 'abort') continue;
      if (race.kind === 'hedge') {
        const index = this.#queue.findIndex((c) => c.notBefore <= performance.now());
        hedgeAt = Infinity;
        if (index === -1) continue;
        const [candidate] = this.#queue.splice(index, 1);
        const started = this.#start(candidate!);
        running.push(started.running);
        yield started.event;
        hedgeAt = this.#hedgeAt(started.running);
        continue;
      }

      const { running: attempt, step } = race;
      running.splice(running.indexOf(attempt), 1);
      if (!step.done) {
        // An attempt's first event is its commit: it won. The others stop.
        yield* this.#abandon(running, 'another endpoint answered first');
        return { running: attempt, commit: step.value };
      }
      this.#live = without(this.#live, attempt);
      const outcome = step.value;
      // An attempt always commits before it is done; a finish without one proves nothing.
      if (outcome.kind === 'cancelled' || outcome.kind === 'done') continue;
      const failure = outcome.failure;
      yield this.#recordFailure(attempt, failure, false);
      if (failure.class === 'content_filter' && !this.#options.failoverOnContentFilter) {
        yield* this.#abandon(running, 'the provider refused the request');
        yield { type: 'failed', summary: this.#summary(null, null), ...contentFilterError(failure) };
        return null;
      }
      this.#scheduleRetry(attempt.candidate, failure);
      if (running.length > 0 && hedgeAt === Infinity) hedgeAt = this.#hedgeAt(running[running.length - 1]!);
    }
    const deadlineMs = this.#deadlineHit ? this.#options.deadlineMs : null;
    yield { type: 'failed', summary: this.#summary(null, null), ...buildAllFailed(this.#group.name, this.#failed, this.#group.skipped, deadlineMs) };
    return null;
  }

  #start(candidate: Candidate, body: ChatRequest = this.#request.body): { running: Running; event: EngineEvent } {
    const { endpoint } = candidate;
    this.#n += 1;
    if (!this.#tried.includes(endpoint)) this.#tried = [...this.#tried, endpoint];
    const cancel = new Cancellation();
    const probe = this.#health.beginAttempt(endpoint);
    const started = performance.now();
    const remaining = this.#options.deadlineMs === null ? Infinity : this.#options.deadlineMs - (started - this.#started);
    const run = runAttempt(this.#dispatcher, {
      endpoint,
      n: this.#n,
      body,
      clientStream: this.#clientStream,
      normalize: this.#normalizeOptions(endpoint),
      started,
      timeoutMs: Math.max(1, Math.min(endpoint.timeoutMs, remaining)),
      cancel,
      acceptContentFilter: !this.#options.failoverOnContentFilter,
    });
    const running = { candidate, n: this.#n, run, cancel, started, probe } as Running;
    running.first = run.next().then((step) => ({ running, step }));
    this.#live = [...this.#live, running];
    if (this.#abort.aborted) cancel.abort();
    return {
      running,
      event: { type: 'attempt_start', n: this.#n, endpoint: endpoint.name, model: endpoint.model, cooling: candidate.cooling },
    };
  }

  #normalizeOptions(endpoint: Endpoint): NormalizeOptions {
    return {
      reasoning: this.#group.reasoning,
      thinkOpen: endpoint.thinkOpen === true,
      // Streaming clients get usage from the engine (summed over resumes); a completion carries its own.
      includeUsage: !this.#clientStream,
      fallbackId: `chatcmpl-${this.#request.requestId}`,
      fallbackCreated: Math.floor(Date.now() / 1000),
      fallbackModel: endpoint.model,
    };
  }

  /** When to start the next endpoint beside `running`: `hedge_ms`, and at once beside a half-open probe. */
  #hedgeAt(running: Running): number {
    const delay = this.#options.hedgeMs ?? (running.probe ? 0 : null);
    return delay === null || this.#queue.length === 0 ? Infinity : running.started + delay;
  }

  async #race(running: Running[], hedgeAt: number): Promise<Race> {
    if (running.length === 1 && hedgeAt === Infinity) {
      // The common case: one attempt, whose own controller already hears an abort.
      const { running: r, step } = await running[0]!.first;
      return { kind: 'step', running: r, step };
    }
    let timer: NodeJS.Timeout | undefined;
    let off: (() => void) | undefined;
    const contenders: Array<Promise<Race>> = running.map((r) => r.first.then(({ step }) => ({ kind: 'step' as const, running: r, step })));
    if (hedgeAt !== Infinity) {
      contenders.push(new Promise((resolve) => (timer = setTimeout(() => resolve({ kind: 'hedge' }), Math.max(0, hedgeAt - performance.now())))));
    }
    contenders.push(
      new Promise((resolve) => {
        off = this.#abort.onAbort(() => resolve({ kind: 'abort' }));
      }),
    );
    try {
      return await Promise.race(contenders);
    } finally {
      clearTimeout(timer);
      off?.();
    }
  }

  /** Stop attempts that are no longer needed and say so. */
  async *#abandon(running: Running[], reason: string): AsyncGenerator<EngineEvent, void, undefined> {
    for (const r of running.splice(0)) {
      if (r.probe && !this.#abort.aborted) {
        // A half-open probe that lost the race still tells us whether the endpoint is back.
        this.#finishProbeInBackground(r);
        const ms = Math.round(performance.now() - r.started);
        this.#records.push({ endpoint: r.candidate.endpoint.name, class: null, status: null, message: `${reason}; the probe finishes in the background`, ms });
        yield { type: 'attempt_abandoned', n: r.n, endpoint: r.candidate.endpoint.name, ms, reason: `${reason} (probe continues)` };
        continue;
      }
      r.cancel.abort();
      await r.first;
      await r.run.return({ kind: 'cancelled' });
      this.#live = without(this.#live, r);
      this.#health.releaseAttempt(r.candidate.endpoint);
      const ms = Math.round(performance.now() - r.started);
      this.#records.push({ endpoint: r.candidate.endpoint.name, class: null, status: null, message: reason, ms });
      yield { type: 'attempt_abandoned', n: r.n, endpoint: r.candidate.endpoint.name, ms, reason };
    }
  }

  #finishProbeInBackground(running: Running): void {
    this.#live = without(this.#live, running);
    const { endpoint } = running.candidate;
    const finish = async (): Promise<void> => {
      let { step } = await running.first;
      while (!step.done) step = await running.run.next();
      const outcome = step.value;
      if (outcome.kind === 'done') {
        this.#health.recordSuccess(endpoint);
        await outcome.drain?.();
      } else if (outcome.kind === 'cancelled') {
        this.#health.releaseAttempt(endpoint);
      } else {
        this.#health.recordFailure(endpoint, outcome.failure, this.#group.cooldown);
      }
    };
    finish().catch(() => this.#health.releaseAttempt(endpoint));
  }

  #recordFailure(running: Running, failure: Failure, afterCommit: boolean): EngineEvent {
    const { endpoint } = running.candidate;
    const ms = Math.round(performance.now() - running.started);
    this.#health.recordFailure(endpoint, failure, this.#group.cooldown);
    this.#budget.record(endpointKey(endpoint));
    this.#records.push({ endpoint: endpoint.name, class: failure.class, status: failure.status ?? null, message: failure.message, ms });
    if (!afterCommit) this.#failed.push({ endpoint: endpoint.name, failure, ms });
    return { type: 'attempt_failed', n: running.n, endpoint: endpoint.name, failure, ms, afterCommit };
  }

  /** Put the same endpoint back at the front when the retry policy allows another try. */
  #scheduleRetry(candidate: Candidate, failure: Failure): void {
    const delay = retryDelay(failure, candidate.retry, this.#options.retry);
    if (delay === null || !this.#budget.allows(endpointKey(candidate.endpoint))) return;
    this.#queue.unshift({ ...candidate, retry: candidate.retry + 1, notBefore: performance.now() + delay });
  }

  // -------------------------------------------------------------------------
  // After commit.

  /**
   * Forward a resumed attempt's output, fitted to what the client already has,
   * until it ends — or until it answers differently (`diverged`: stopped here,
   * and not the endpoint's fault).
   */
  async *#pipe(running: Running, client: ClientStream, filter: ResumeFilter): AsyncGenerator<EngineEvent, AttemptOutcome | { kind: 'diverged'; why: string }, undefined> {
    for (;;) {
      const step = await running.run.next();
      if (step.done) {
        this.#live = without(this.#live, running);
        return step.value;
      }
      const event = step.value;
      if (event.type !== 'chunks') {
        yield event;
        continue;
      }
      const out: ChatCompletionChunk[] = [];
      for (const chunk of event.chunks) {
        const fitted = filter.push(chunk);
        if (fitted.kind === 'diverged') {
          if (out.length > 0) yield { type: 'chunks', chunks: out };
          running.cancel.abort();
          await running.run.return({ kind: 'cancelled' });
          this.#live = without(this.#live, running);
          return { kind: 'diverged', why: fitted.why };
        }
        if (fitted.chunk !== null) out.push(client.stamp(fitted.chunk));
      }
      if (out.length > 0) yield { type: 'chunks', chunks: out };
    }
  }

  #canResume(client: ClientStream): boolean {
    // An interrupted tool call is never resumed: its arguments cannot be spliced.
    return client.resumable && !client.toolCalls && !this.#abort.aborted;
  }

  /**
   * Continue a broken stream from the next attempts: a retry of the same
   * endpoint when the retry policy allows, then the endpoints not tried yet.
   * Returns null when it already ended the request (cancelled, diverged).
   */
  async *#resume(
    broken: Candidate,
    failure: Failure,
    client: ClientStream,
  ): AsyncGenerator<EngineEvent, { running: Running; outcome: AttemptOutcome } | null, undefined> {
    let lastFailure = failure;
    let lastEndpoint = broken.endpoint;
    const candidates: Candidate[] = [];
    const sameDelay = retryDelay(failure, broken.retry, this.#options.retry);
    if (sameDelay !== null && this.#budget.allows(endpointKey(broken.endpoint))) {
      candidates.push({ ...broken, retry: broken.retry + 1, notBefore: performance.now() + sameDelay });
    }
    for (const candidate of this.#queue) if (!this.#tried.includes(candidate.endpoint)) candidates.push(candidate);

    for (const candidate of candidates) {
      let mode: ResumeMode = client.content === '' || candidate.endpoint.prefill === false ? 'restart' : 'prefill';
      for (;;) {
        if (this.#abort.aborted) {
          yield* this.#endAborted(lastEndpoint, true);
          return null;
        }
        const wait = candidate.notBefore - performance.now();
        if (wait > 0 && !(await sleep(wait, this.#abort))) continue;
        const body = mode === 'prefill' ? withPrefill(this.#request.body, client.content) : this.#request.body;
        const { running, event } = this.#start(candidate, body);
        yield event;
        const filter = new ResumeFilter(mode, { content: client.content, reasoning: client.reasoning });
        const first = await running.first;
        let outcome: AttemptOutcome | { kind: 'diverged'; why: string };
        if (first.step.done) {
          this.#live = without(this.#live, running);
          outcome = first.step.value;
        } else {
          yield { type: 'resume', n: running.n, endpoint: candidate.endpoint.name, mode, reusedChars: mode === 'prefill' ? client.content.length : client.content.length || client.reasoning.length };
          outcome = yield* this.#pipe(running, client, filter);
        }
        lastEndpoint = candidate.endpoint;
        if (outcome.kind === 'done' || outcome.kind === 'cancelled') return { running, outcome };
        if (outcome.kind === 'diverged') {
          // Not the endpoint's fault: it answered, just differently.
          yield this.#interrupted(candidate.endpoint, lastFailure, `resume abandoned: ${outcome.why}`);
          return null;
        }
        yield this.#recordFailure(running, outcome.failure, outcome.kind === 'interrupted');
        lastFailure = outcome.failure;
        // An endpoint that rejects the prefill gets one plain restart.
        if (mode === 'prefill' && candidate.endpoint.prefill !== true && outcome.kind === 'failed' && outcome.failure.class === 'bad_request') {
          mode = 'restart';
          continue;
        }
        break;
      }
    }
    yield this.#interrupted(lastEndpoint, lastFailure);
    return null;
  }

  async *#finishDone(running: Running, outcome: Extract<AttemptOutcome, { kind: 'done' }>, client: ClientStream): AsyncGenerator<EngineEvent, void, undefined> {
    const { endpoint } = running.candidate;
    this.#health.recordSuccess(endpoint);
    this.#records.push({ endpoint: endpoint.name, class: null, status: null, message: null, ms: Math.round(performance.now() - running.started) });
    let usage = outcome.usage;
    if (this.#clientStream) {
      client.addUsage(outcome.usage);
      usage = client.usage;
      const usageChunk = this.#includeUsage ? client.usageChunk() : null;
      if (usageChunk) yield { type: 'chunks', chunks: [usageChunk] };
    }
    const ttft = Math.round(running.started - this.#started + outcome.ttftMs);
    try {
      yield { type: 'done', summary: this.#summary(endpoint.name, ttft, usage), finishReason: outcome.finishReason };
    } finally {
      // Also when the consumer stops iterating at `done`.
      if (outcome.drain) await outcome.drain();
    }
  }

  #interrupted(endpoint: Endpoint, failure: Failure, note?: string): EngineEvent {
    const interrupted: Failure = failure.class === 'stream_interrupted' ? failure : { ...failure, class: 'stream_interrupted' };
    return { type: 'interrupted', summary: this.#summary(endpoint.name, null), failure: interrupted, error: interruptedError(interrupted, note) };
  }

  /** The request ended from outside: the client went away, or the deadline passed. */
  async *#endAborted(endpoint: Endpoint | null, committed: boolean): AsyncGenerator<EngineEvent, void, undefined> {
    if (!this.#deadlineHit) {
      yield { type: 'cancelled', summary: this.#summary(null, null) };
      return;
    }
    const deadlineS = (this.#options.deadlineMs ?? 0) / 1000;
    if (committed && endpoint) {
      yield this.#interrupted(endpoint, { class: 'timeout', message: `the request deadline of ${deadlineS} s was reached` });
      return;
    }
    yield { type: 'failed', summary: this.#summary(null, null), ...buildAllFailed(this.#group.name, this.#failed, this.#group.skipped, this.#options.deadlineMs) };
  }

  #summary(endpoint: string | null, ttftMs: number | null, usage: Usage | null = null): RequestSummary {
    return {
      requestId: this.#request.requestId,
      group: this.#group.name,
      stream: this.#clientStream,
      endpoint,
      attempts: this.#records,
      ms: Math.round(performance.now() - this.#started),
      ttftMs,
      usage,
    };
  }
}

function without<T>(list: T[], item: T): T[] {
  return list.includes(item) ? list.filter((x) => x !== item) : list;
}

/**
 * The request that asks an endpoint to continue a partial answer: the answer
 * as a final assistant message, flagged the ways servers understand
 * (`prefix` for DeepSeek and Mistral, `continue_final_message` for vLLM and
 * SGLang). A server that rejects this gets a plain restart instead.
 */
function withPrefill(body: ChatRequest, content: string): ChatRequest {
  return {
    ...body,
    messages: [...body.messages, { role: 'assistant', content, prefix: true }],
    continue_final_message: true,
    add_generation_prompt: false,
  };
}
