/**
 * The failover engine (SPEC §3): walks a group's endpoints, commits to the
 * first that produces a real token, and reports everything it does as typed
 * events. Nothing here knows about HTTP servers, terminals or files.
 *
 * `run()` is an async generator, so a slow consumer naturally pauses the
 * upstream read (backpressure) and stopping the iteration releases it.
 *
 * A request is served in two halves over one per-request state
 * (request-state.ts): the race before commit (race.ts: order, retries,
 * hedging, probes) and the stream after commit (after-commit.ts: forwarding,
 * resume, finish). This file wires them and owns the request's lifetime.
 */
import type { Dispatcher } from 'undici';
import { finishCommitted } from './after-commit.js';
import { Cancellation } from './cancellation.js';
import { ClientStream } from './client-stream.js';
import { HealthTracker } from './health.js';
import { untilCommit } from './race.js';
import { registerSecrets } from './redact.js';
import { RequestState, type EngineRequest } from './request-state.js';
import { RetryBudget } from './resilience.js';
import type { AttemptOutcome } from './runner.js';
import type { EngineEvent, Group } from './types.js';
import { createUpstreamAgent } from './upstream-target.js';

export type { EngineRequest } from './request-state.js';

export interface EngineOptions {
  /** Upstream HTTP client; by default the engine creates (and closes) its own undici Agent. */
  dispatcher?: Dispatcher;
  /** Cooldown state; share one tracker between engines to share health. */
  health?: HealthTracker;
}

/** Groups whose keys the redactor already knows (a reload makes a new group object). */
const registeredGroups = new WeakSet<Group>();

export class FailoverEngine {
  readonly health: HealthTracker;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #budget = new RetryBudget();

  constructor(options: EngineOptions = {}) {
    this.health = options.health ?? new HealthTracker();
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher = options.dispatcher ?? createUpstreamAgent();
  }

  /** Serve one request through its group. Always ends with done, interrupted, failed or cancelled. */
  run(request: EngineRequest): AsyncGenerator<EngineEvent, void, undefined> {
    if (!registeredGroups.has(request.group)) {
      registerSecrets(request.group.endpoints.map((e) => e.apikey));
      registeredGroups.add(request.group);
    }
    return serve(new RequestState(this.#dispatcher, this.health, this.#budget, request));
  }

  /** Close the engine's own upstream connections. */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }
}

async function* serve(state: RequestState): AsyncGenerator<EngineEvent, void, undefined> {
  const onClientAbort = (): void => state.abort.abort();
  const signal = state.request.signal;
  let offClient: (() => void) | undefined;
  if (signal instanceof Cancellation) offClient = signal.onAbort(onClientAbort);
  else if (signal) {
    if (signal.aborted) state.abort.abort();
    signal.addEventListener('abort', onClientAbort, { once: true });
    offClient = () => signal.removeEventListener('abort', onClientAbort);
  }
  state.abort.onAbort(() => {
    for (const running of state.live) running.cancel.abort();
  });
  let deadlineTimer: NodeJS.Timeout | undefined;
  if (state.options.deadlineMs !== null) {
    deadlineTimer = setTimeout(() => {
      state.deadlineHit = true;
      state.abort.abort();
    }, state.options.deadlineMs);
  }
  try {
    const winner = yield* untilCommit(state);
    if (!winner) return;
    const { running, commit } = winner;
    yield commit;
    // Several choices (`n > 1`) cannot be resumed as one answer.
    const n = state.request.body.n;
    const client = new ClientStream(state.clientStream && state.options.resume && !(typeof n === 'number' && n > 1));
    // The winner's output is forwarded here, not through another generator:
    // every level of `yield*` costs each event a few promise turns.
    let outcome: AttemptOutcome;
    for (;;) {
      const step = await running.run.next();
      if (step.done) {
        state.forget(running);
        outcome = step.value;
        break;
      }
      const event = step.value;
      if (event.type === 'chunks') for (const chunk of event.chunks) client.stamp(chunk);
      yield event;
    }
    yield* finishCommitted(state, running, outcome, client);
  } finally {
    clearTimeout(deadlineTimer);
    offClient?.();
    // The consumer stopped early: nothing may keep running upstream.
    for (const running of state.live) running.cancel.abort();
  }
}
