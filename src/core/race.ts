/**
 * Before commit (SPEC §3.1–3.3, §3.7, §3.11): endpoints in order, cooling
 * ones last, same-endpoint retries, hedged attempts and half-open probes
 * racing, until one attempt produces its first real token. Nothing here is
 * visible to the client but the events; a loser is stopped and said so.
 */
import { performance } from 'node:perf_hooks';
import { nextCandidate, readyIndex, releaseReserved } from './admission.js';
import { sleep } from './cancellation.js';
import { explodeCompletion } from './openai/convert.js';
import { contentFilterError } from './outcome.js';
import { retryWithoutParameter } from './shims.js';
import type { Candidate, RequestState, Running, Step } from './request-state.js';
import type { ChatCompletion, EngineEvent } from './types.js';

type Race = { kind: 'step'; running: Running; step: Step } | { kind: 'hedge' } | { kind: 'abort' };

/** The attempt that committed, with its commit event; null when the request already ended. */
export type Winner = { running: Running; commit: EngineEvent } | null;

export async function* untilCommit(state: RequestState): AsyncGenerator<EngineEvent, Winner, undefined> {
  const running: Running[] = [];
  let hedgeAt = Infinity;
  /** The first refusal: the answer when no endpoint gives another. */
  let refused: Refused | null = null;
  let attempts = 0;
  for (;;) {
    if (state.abort.aborted) {
      yield* abandon(state, running, state.deadlineHit ? 'deadline reached' : 'request cancelled');
      yield state.endAborted(null, false);
      return null;
    }
    if (running.length === 0) {
      // A lane at its local limit is skipped (admission.ts), never failed.
      const candidate = await nextCandidate(state);
      if (state.abort.aborted) {
        if (candidate) state.queue.unshift(candidate);
        releaseReserved(state);
        continue;
      }
      if (!candidate) break;
      const wait = candidate.notBefore - performance.now();
      if (wait > 0 && !(await sleep(wait, state.abort))) {
        state.queue.unshift(candidate);
        releaseReserved(state);
        continue;
      }
      const started = state.start(candidate);
      attempts = started.running.n;
      running.push(started.running);
      yield started.event;
      hedgeAt = nextHedgeAt(state, started.running);
      continue;
    }

    // A hedge that is already due (a half-open probe) starts without waiting on anything.
    const race: Race = hedgeAt <= performance.now() ? { kind: 'hedge' } : await raceAttempts(state, running, hedgeAt);
    if (race.kind === 'abort') continue;
    if (race.kind === 'hedge') {
      const index = readyIndex(state);
      hedgeAt = Infinity;
      if (index === -1) continue;
      const [candidate] = state.queue.splice(index, 1);
      const started = state.start(candidate!);
      attempts = started.running.n;
      running.push(started.running);
      yield started.event;
      hedgeAt = nextHedgeAt(state, started.running);
      continue;
    }

    const { running: attempt, step } = race;
    running.splice(running.indexOf(attempt), 1);
    if (!step.done) {
      // An attempt's first event is its commit: it won. The others stop.
      yield* abandon(state, running, 'another endpoint answered first');
      return { running: attempt, commit: step.value };
    }
    state.forget(attempt);
    const outcome = step.value;
    // An attempt always commits before it is done; a finish without one proves nothing.
    if (outcome.kind === 'cancelled' || outcome.kind === 'done') continue;
    const shim = retryWithoutParameter(state, attempt.candidate, outcome.failure);
    const failure = shim?.failure ?? outcome.failure;
    yield state.recordFailure(attempt, failure, false);
    if (failure.answer !== undefined && refused === null) {
      refused = { running: attempt, answer: failure.answer, ms: Math.round(performance.now() - state.started) };
    }
    if (failure.class === 'content_filter' && !state.options.failoverOnContentFilter) {
      yield* abandon(state, running, 'the provider refused the request');
      if (refused !== null) yield* answerRefusal(state, refused, attempts);
      else yield { type: 'failed', summary: state.summary(null, null), ...contentFilterError(failure) };
      return null;
    }
    const retry = shim?.retry ?? state.retryOf(attempt.candidate, failure);
    if (retry) state.queue.unshift(retry);
    if (running.length > 0 && hedgeAt === Infinity) hedgeAt = nextHedgeAt(state, running[running.length - 1]!);
  }
  if (refused !== null) yield* answerRefusal(state, refused, attempts);
  else yield state.allFailed();
  return null;
}

interface Refused {
  running: Running;
  answer: ChatCompletion;
  /** When it came, from the request's start. */
  ms: number;
}

/**
 * Every endpoint failed and one refused: the refusal is the provider's
 * deliberate answer, so the client gets it as given (a completion, or its
 * replay as a stream) instead of an error. The refusal stays recorded as the
 * attempt's failure (class `content_filter`, which never cools).
 */
function* answerRefusal(state: RequestState, refused: Refused, attempts: number): Generator<EngineEvent, void, undefined> {
  const { answer, ms } = refused;
  const endpoint = refused.running.candidate.endpoint.name;
  yield { type: 'commit', n: attempts, endpoint, model: answer.model, ttftMs: ms };
  yield state.clientStream
    ? { type: 'chunks', chunks: explodeCompletion(answer, { includeUsage: state.includeUsage }) }
    : { type: 'completion', completion: answer };
  yield { type: 'done', summary: state.summary(endpoint, ms, answer.usage ?? null), finishReason: answer.choices[0]?.finish_reason ?? 'stop' };
}

/** When to start the next endpoint beside `running`: `hedge_ms`, and at once beside a half-open probe. */
function nextHedgeAt(state: RequestState, running: Running): number {
  const delay = state.options.hedgeMs ?? (running.probe ? 0 : null);
  return delay === null || state.queue.length === 0 ? Infinity : running.started + delay;
}

async function raceAttempts(state: RequestState, running: Running[], hedgeAt: number): Promise<Race> {
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
      off = state.abort.onAbort(() => resolve({ kind: 'abort' }));
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
async function* abandon(state: RequestState, running: Running[], reason: string): AsyncGenerator<EngineEvent, void, undefined> {
  for (const r of running.splice(0)) {
    const endpoint = r.candidate.endpoint;
    if (r.probe && !state.abort.aborted) {
      // A half-open probe that lost the race still tells us whether the endpoint is back.
      finishProbeInBackground(state, r);
      const ms = Math.round(performance.now() - r.started);
      state.records.push({ endpoint: endpoint.name, class: null, status: null, message: `${reason}; the probe finishes in the background`, ms });
      yield { type: 'attempt_abandoned', n: r.n, endpoint: endpoint.name, ms, reason: `${reason} (probe continues)` };
      continue;
    }
    r.cancel.abort();
    await r.first;
    await r.run.return({ kind: 'cancelled' });
    state.forget(r);
    state.health.releaseAttempt(endpoint);
    const ms = Math.round(performance.now() - r.started);
    state.records.push({ endpoint: endpoint.name, class: null, status: null, message: reason, ms });
    yield { type: 'attempt_abandoned', n: r.n, endpoint: endpoint.name, ms, reason };
  }
}

function finishProbeInBackground(state: RequestState, running: Running): void {
  state.forget(running);
  const { endpoint } = running.candidate;
  const finish = async (): Promise<void> => {
    let { step } = await running.first;
    while (!step.done) step = await running.run.next();
    const outcome = step.value;
    if (outcome.kind === 'done') {
      state.health.recordSuccess(endpoint);
      await outcome.drain?.();
    } else if (outcome.kind === 'cancelled') {
      state.health.releaseAttempt(endpoint);
    } else {
      state.health.recordFailure(endpoint, outcome.failure, state.group.cooldown);
    }
  };
  finish().catch(() => state.health.releaseAttempt(endpoint));
}

/** Candidates not tried yet in this request, in their order. */
export function untried(state: RequestState): Candidate[] {
  return state.queue.filter((c) => !state.tried.includes(c.endpoint));
}
