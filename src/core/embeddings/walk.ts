/**
 * One sub-batch of an embeddings request walked over its candidate endpoints:
 * health order (cooling ones last), same-endpoint retries, and hedging, which
 * is free of risk here since embeddings are idempotent and an answer is only
 * used once it validates. The first valid answer wins; the others stop.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { Cancellation, sleep } from '../cancellation.js';
import { endpointKey, type HealthTracker } from '../health.js';
import type { FailedAttempt } from '../outcome.js';
import { resolveOptions, retryDelay, type RetryBudget } from '../resilience.js';
import type { AttemptRecord, EngineEvent } from '../types.js';
import type { ValidAnswer } from './answer.js';
import { callEmbeddings, type CallResult } from './call.js';
import type { EmbeddingInput, EmbeddingsEndpoint, EmbeddingsGroup } from './types.js';

/** What a walk shares with the rest of its request. */
export interface WalkContext {
  dispatcher: Dispatcher;
  health: HealthTracker;
  budget: RetryBudget;
  group: EmbeddingsGroup;
  extra: Record<string, unknown>;
  /** Aborted when the client goes away or the deadline passes. */
  abort: Cancellation;
  /** Milliseconds left for the whole request. */
  remainingMs: () => number;
  records: AttemptRecord[];
  /** Attempt numbers run on across the sub-batches of one request. */
  nextN: () => number;
  emit: (event: EngineEvent) => void;
}

export type WalkResult =
  | { kind: 'ok'; answer: ValidAnswer; endpoint: EmbeddingsEndpoint }
  /** Nothing left to try; `failed` says why each attempt failed. */
  | { kind: 'exhausted'; failed: FailedAttempt[] }
  | { kind: 'cancelled' };

interface Candidate {
  endpoint: EmbeddingsEndpoint;
  cooling: boolean;
  retry: number;
  notBefore: number;
}

interface Live {
  candidate: Candidate;
  n: number;
  started: number;
  probe: boolean;
  cancel: Cancellation;
  result: Promise<{ live: Live; result: CallResult }>;
}

type Race = { kind: 'result'; live: Live; result: CallResult } | { kind: 'hedge' } | { kind: 'abort' };

export async function walkBatch(
  ctx: WalkContext,
  candidates: EmbeddingsEndpoint[],
  inputs: EmbeddingInput[],
): Promise<WalkResult> {
  const { group } = ctx;
  const options = resolveOptions(group);
  const queue: Candidate[] = ctx.health
    .plan(candidates)
    .map((p) => ({ endpoint: p.endpoint as EmbeddingsEndpoint, cooling: p.cooling, retry: 0, notBefore: 0 }));
  const failed: FailedAttempt[] = [];
  const live: Live[] = [];
  let hedgeAt = Infinity;

  const start = (candidate: Candidate): void => {
    const { endpoint } = candidate;
    const n = ctx.nextN();
    ctx.emit({ type: 'attempt_start', n, endpoint: endpoint.name, model: endpoint.model, cooling: candidate.cooling });
    const probe = ctx.health.beginAttempt(endpoint);
    const cancel = new Cancellation();
    const off = ctx.abort.onAbort(() => cancel.abort());
    const timeoutMs = Math.max(1, Math.min(endpoint.timeoutMs, ctx.remainingMs()));
    const attempt = { candidate, n, started: performance.now(), probe, cancel } as Live;
    attempt.result = callEmbeddings(ctx.dispatcher, {
      endpoint,
      inputs,
      dimensions: group.dimensions,
      extra: ctx.extra,
      timeoutMs,
      cancel,
    }).then((result) => {
      off();
      return { live: attempt, result };
    });
    live.push(attempt);
    // A half-open probe always gets company at once, so probing never costs the client latency.
    const delay = options.hedgeMs ?? (probe ? 0 : null);
    hedgeAt = delay === null || queue.length === 0 ? Infinity : attempt.started + delay;
  };

  for (;;) {
    if (ctx.abort.aborted) {
      stopAll(ctx, live, 'request cancelled');
      return { kind: 'cancelled' };
    }
    if (live.length === 0) {
      const candidate = queue.shift();
      if (!candidate) return { kind: 'exhausted', failed };
      const wait = candidate.notBefore - performance.now();
      if (wait > 0 && !(await sleep(wait, ctx.abort))) continue;
      start(candidate);
      continue;
    }
    const race = await raceLive(ctx.abort, live, hedgeAt);
    if (race.kind === 'abort') continue;
    if (race.kind === 'hedge') {
      hedgeAt = Infinity;
      const index = queue.findIndex((c) => c.notBefore <= performance.now());
      if (index !== -1) start(queue.splice(index, 1)[0]!);
      continue;
    }
    const { live: attempt, result } = race;
    live.splice(live.indexOf(attempt), 1);
    const { endpoint } = attempt.candidate;
    const ms = Math.round(performance.now() - attempt.started);
    if (result.kind === 'cancelled') {
      ctx.health.releaseAttempt(endpoint);
      continue;
    }
    if (result.kind === 'ok') {
      ctx.health.recordSuccess(endpoint);
      // The losers first: the winner's record is the summary's last, as in chat.
      stopAll(ctx, live, 'another endpoint answered first');
      ctx.records.push({ endpoint: endpoint.name, class: null, status: null, message: null, ms });
      ctx.emit({
        type: 'commit',
        n: attempt.n,
        endpoint: endpoint.name,
        model: result.answer.model ?? endpoint.model,
        ttftMs: ms,
      });
      return { kind: 'ok', answer: result.answer, endpoint };
    }
    const { failure } = result;
    ctx.health.recordFailure(endpoint, failure, group.cooldown);
    ctx.budget.record(endpointKey(endpoint));
    ctx.records.push({
      endpoint: endpoint.name,
      class: failure.class,
      status: failure.status ?? null,
      message: failure.message,
      ms,
    });
    failed.push({ endpoint: endpoint.name, failure, ms });
    ctx.emit({ type: 'attempt_failed', n: attempt.n, endpoint: endpoint.name, failure, ms, afterCommit: false });
    const delay = retryDelay(failure, attempt.candidate.retry, options.retry);
    if (delay !== null && ctx.budget.allows(endpointKey(endpoint))) {
      queue.unshift({ ...attempt.candidate, retry: attempt.candidate.retry + 1, notBefore: performance.now() + delay });
    }
    if (live.length > 0 && hedgeAt === Infinity && options.hedgeMs !== null && queue.length > 0) {
      hedgeAt = live[live.length - 1]!.started + options.hedgeMs;
    }
  }
}

async function raceLive(abort: Cancellation, live: Live[], hedgeAt: number): Promise<Race> {
  if (live.length === 1 && hedgeAt === Infinity) {
    // One attempt: its own cancellation already hears an abort.
    const { live: attempt, result } = await live[0]!.result;
    return { kind: 'result', live: attempt, result };
  }
  let timer: NodeJS.Timeout | undefined;
  let off: (() => void) | undefined;
  const contenders: Array<Promise<Race>> = live.map((l) => l.result.then((r) => ({ kind: 'result' as const, ...r })));
  if (hedgeAt !== Infinity) {
    contenders.push(
      new Promise(
        (resolve) => (timer = setTimeout(() => resolve({ kind: 'hedge' }), Math.max(0, hedgeAt - performance.now()))),
      ),
    );
  }
  contenders.push(new Promise((resolve) => (off = abort.onAbort(() => resolve({ kind: 'abort' })))));
  try {
    return await Promise.race(contenders);
  } finally {
    clearTimeout(timer);
    off?.();
  }
}

/**
 * Stop attempts no longer needed and say so. A half-open probe that lost
 * still tells whether its endpoint is back, so it finishes in the background.
 */
function stopAll(ctx: WalkContext, live: Live[], reason: string): void {
  for (const attempt of live.splice(0)) {
    const { endpoint } = attempt.candidate;
    const ms = Math.round(performance.now() - attempt.started);
    const probing = attempt.probe && !ctx.abort.aborted;
    if (probing) {
      void attempt.result.then(({ result }) => {
        if (result.kind === 'ok') ctx.health.recordSuccess(endpoint);
        else if (result.kind === 'failure') ctx.health.recordFailure(endpoint, result.failure, ctx.group.cooldown);
        else ctx.health.releaseAttempt(endpoint);
      });
    } else {
      attempt.cancel.abort();
      ctx.health.releaseAttempt(endpoint);
    }
    const why = probing ? `${reason} (probe continues)` : reason;
    ctx.records.push({ endpoint: endpoint.name, class: null, status: null, message: why, ms });
    ctx.emit({ type: 'attempt_abandoned', n: attempt.n, endpoint: endpoint.name, ms, reason: why });
  }
}
