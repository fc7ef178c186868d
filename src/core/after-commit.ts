/**
 * After commit (SPEC §3.4, §3.11): how a committed attempt ends. A complete
 * answer finishes the request; a broken stream is either resumed from the
 * next attempts into one answer that is provably the continuation of what
 * the client already has, or ended with the in-band `stream_interrupted`
 * error. The client never receives text from two different answers.
 */
import { performance } from 'node:perf_hooks';
import { sleep } from './cancellation.js';
import type { ClientStream } from './client-stream.js';
import { continuesPrefill, withPrefill } from './prefill.js';
import { untried } from './race.js';
import type { Candidate, RequestState, Running } from './request-state.js';
import { planResume, ResumeFilter, type ResumePlan } from './resume-filter.js';
import type { AttemptOutcome } from './runner.js';
import type { ChatCompletionChunk, EngineEvent, Failure } from './types.js';

type PipeOutcome = AttemptOutcome | { kind: 'diverged'; why: string };

/** End the request after the committed attempt `running` ended with `outcome`. */
export async function* finishCommitted(
  state: RequestState,
  running: Running,
  outcome: AttemptOutcome,
  client: ClientStream,
): AsyncGenerator<EngineEvent, void, undefined> {
  const endpoint = running.candidate.endpoint;
  switch (outcome.kind) {
    case 'done':
      yield* state.finishDone(running, outcome, client);
      return;
    case 'cancelled':
      yield state.endAborted(endpoint, true);
      return;
    case 'interrupted':
    case 'failed': {
      yield state.recordFailure(running, outcome.failure, true);
      if (!canResume(state, client)) {
        yield state.interrupted(endpoint, outcome.failure);
        return;
      }
      const resumed = yield* resume(state, running.candidate, outcome.failure, client);
      if (resumed === null) return;
      if (resumed.outcome.kind === 'done') yield* state.finishDone(resumed.running, resumed.outcome, client);
      else yield state.endAborted(resumed.running.candidate.endpoint, true);
      return;
    }
  }
}

function canResume(state: RequestState, client: ClientStream): boolean {
  // An interrupted tool call is never resumed: its arguments cannot be spliced.
  return client.resumable && !client.toolCalls && !state.abort.aborted;
}

/**
 * Continue a broken stream from the next attempts: a retry of the same
 * endpoint when the retry policy allows, then the endpoints not tried yet.
 * Returns null when it already ended the request (cancelled, diverged).
 */
async function* resume(
  state: RequestState,
  broken: Candidate,
  failure: Failure,
  client: ClientStream,
): AsyncGenerator<EngineEvent, { running: Running; outcome: AttemptOutcome } | null, undefined> {
  let lastFailure = failure;
  let lastEndpoint = broken.endpoint;
  const candidates: Candidate[] = [];
  const same = state.retryOf(broken, failure);
  if (same) candidates.push(same);
  candidates.push(...untried(state));

  for (const candidate of candidates) {
    let plan: ResumePlan = planResume(client.content, continuesPrefill(candidate.endpoint));
    for (;;) {
      if (state.abort.aborted) {
        yield state.endAborted(lastEndpoint, true);
        return null;
      }
      const wait = candidate.notBefore - performance.now();
      if (wait > 0 && !(await sleep(wait, state.abort))) continue;
      const body = plan.mode === 'prefill' ? withPrefill(state.request.body, plan.prefill) : state.request.body;
      const { running, event } = state.start(candidate, body);
      yield event;
      const filter = new ResumeFilter(plan, { content: client.content, reasoning: client.reasoning });
      const first = await running.first;
      let outcome: PipeOutcome;
      if (first.step.done) {
        state.forget(running);
        outcome = first.step.value;
      } else {
        const reusedChars = plan.mode === 'prefill' ? plan.prefill.length : client.content.length || client.reasoning.length;
        yield { type: 'resume', n: running.n, endpoint: candidate.endpoint.name, mode: plan.mode, reusedChars };
        outcome = yield* pipe(state, running, client, filter);
      }
      lastEndpoint = candidate.endpoint;
      if (outcome.kind === 'done' || outcome.kind === 'cancelled') return { running, outcome };
      if (outcome.kind === 'diverged') {
        // Not the endpoint's fault: it answered, just differently.
        yield state.interrupted(candidate.endpoint, lastFailure, `resume abandoned: ${outcome.why}`);
        return null;
      }
      yield state.recordFailure(running, outcome.failure, outcome.kind === 'interrupted');
      lastFailure = outcome.failure;
      // A 400 for the prefill means nothing was generated: one plain restart, verified like any other.
      if (plan.mode === 'prefill' && outcome.kind === 'failed' && outcome.failure.class === 'bad_request') {
        plan = { mode: 'restart', prefill: '' };
        continue;
      }
      break;
    }
  }
  yield state.interrupted(lastEndpoint, lastFailure);
  return null;
}

/**
 * Forward a resumed attempt's output, fitted to what the client already has,
 * until it ends — or until it answers differently (`diverged`: stopped here,
 * and not the endpoint's fault).
 */
async function* pipe(state: RequestState, running: Running, client: ClientStream, filter: ResumeFilter): AsyncGenerator<EngineEvent, PipeOutcome, undefined> {
  for (;;) {
    const step = await running.run.next();
    if (step.done) {
      state.forget(running);
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
        state.forget(running);
        return { kind: 'diverged', why: fitted.why };
      }
      if (fitted.chunk !== null) out.push(client.stamp(fitted.chunk));
    }
    if (out.length > 0) yield { type: 'chunks', chunks: out };
  }
}
