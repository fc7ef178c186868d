/**
 * The embeddings engine (`POST /v1/embeddings`): splits a request into
 * sub-batches, walks the group's endpoints for each one with the shared
 * cooldowns, validates every answer before it counts, and reassembles the
 * vectors in input order. A request never mixes embedding spaces: only the
 * group's family is tried unless the profile allows crossing families, and
 * even then the first sub-batch's family is pinned for the rest.
 *
 * It reports what it does with the chat engine's events (attempt_start,
 * attempt_failed, commit, done / failed / cancelled), so logs, `/status` and
 * `/metrics` show embeddings requests like chat ones.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { Cancellation } from '../cancellation.js';
import { HealthTracker } from '../health.js';
import { buildAllFailed } from '../outcome.js';
import { registerSecrets } from '../redact.js';
import { createUpstreamAgent } from '../upstream-target.js';
import { resolveOptions, RetryBudget } from '../resilience.js';
import type {
  AttemptRecord,
  CancelledEvent,
  DoneEvent,
  EngineEvent,
  FailedEvent,
  RequestSummary,
  SkippedEndpoint,
} from '../types.js';
import { toBase64, type ValidAnswer } from './answer.js';
import { EmbeddingsCache } from './cache.js';
import { usableEndpoints } from './input.js';
import type {
  EmbeddingInput,
  EmbeddingsEndpoint,
  EmbeddingsGroup,
  EmbeddingsRequest,
  EmbeddingsResponse,
} from './types.js';
import { walkBatch } from './walk.js';

export interface EmbeddingsEngineOptions {
  /** Upstream HTTP client; by default the engine creates (and closes) its own undici Agent. */
  dispatcher?: Dispatcher;
  /** Cooldown state; pass the chat engine's tracker so both share endpoint health. */
  health?: HealthTracker;
}

export interface EmbeddingsRun {
  /** Correlates events, logs and the `x-request-id` header. */
  requestId: string;
  group: EmbeddingsGroup;
  request: EmbeddingsRequest;
  /** Aborting it (client gone) aborts the upstream call at once. */
  signal?: AbortSignal | Cancellation;
  /** Every event as it happens, the final one included. */
  onEvent?: (event: EngineEvent) => void;
}

export type EmbeddingsOutcome =
  | {
      kind: 'done';
      response: EmbeddingsResponse;
      /** Distinct endpoints that answered, in order (empty when every vector came from the cache). */
      endpoints: string[];
      /** Upstream attempts made. */
      attempts: number;
      event: DoneEvent;
    }
  | { kind: 'failed'; event: FailedEvent }
  | { kind: 'cancelled'; event: CancelledEvent };

/** The summary's endpoint when no upstream was asked. */
export const CACHE_ENDPOINT = 'cache';

interface Ctx {
  run: EmbeddingsRun;
  group: EmbeddingsGroup;
  abort: Cancellation;
  started: number;
  deadlineMs: number | null;
  deadlineHit: boolean;
  records: AttemptRecord[];
  n: number;
}

type BatchResult =
  | { kind: 'ok'; answer: ValidAnswer; endpoint: EmbeddingsEndpoint }
  | { kind: 'failed'; event: FailedEvent }
  | { kind: 'cancelled' };

const registeredGroups = new WeakSet<EmbeddingsGroup>();

export class EmbeddingsEngine {
  readonly health: HealthTracker;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #budget = new RetryBudget();
  /** One cache per group object: a reload (a new object) may change its bound. */
  readonly #caches = new WeakMap<EmbeddingsGroup, EmbeddingsCache>();

  constructor(options: EmbeddingsEngineOptions = {}) {
    this.health = options.health ?? new HealthTracker();
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher = options.dispatcher ?? createUpstreamAgent();
  }

  /** The group's cache, or null when it has none. */
  cacheOf(group: EmbeddingsGroup): EmbeddingsCache | null {
    if (group.cache === null) return null;
    let cache = this.#caches.get(group);
    if (!cache) {
      cache = new EmbeddingsCache(group.cache.maxBytes);
      this.#caches.set(group, cache);
    }
    return cache;
  }

  /** Serve one request; resolves with its answer or how it ended (also sent to `onEvent`). */
  async run(run: EmbeddingsRun): Promise<EmbeddingsOutcome> {
    const { group } = run;
    if (!registeredGroups.has(group)) {
      registerSecrets(group.endpoints.map((e) => e.apikey));
      registeredGroups.add(group);
    }
    const ctx: Ctx = {
      run,
      group,
      abort: new Cancellation(),
      started: performance.now(),
      deadlineMs: resolveOptions(group).deadlineMs,
      deadlineHit: false,
      records: [],
      n: 0,
    };
    const off = follow(run.signal, ctx.abort);
    const timer =
      ctx.deadlineMs === null
        ? undefined
        : setTimeout(() => {
            ctx.deadlineHit = true;
            ctx.abort.abort();
          }, ctx.deadlineMs);
    try {
      const outcome = await this.#serve(ctx);
      run.onEvent?.(outcome.event);
      return outcome;
    } finally {
      clearTimeout(timer);
      off();
    }
  }

  async #serve(ctx: Ctx): Promise<EmbeddingsOutcome> {
    const { group, run } = ctx;
    const inputs = run.request.inputs;
    const vectors: Array<number[] | undefined> = new Array<number[] | undefined>(inputs.length);
    const cache = this.cacheOf(group);
    // Crossing families, the family is only known once the first sub-batch is answered.
    let family: string | null = group.allowCrossFamily ? null : group.family;
    const cachedFrom = new Set<number>();
    let pending: number[] = [];
    for (let i = 0; i < inputs.length; i++) {
      const hit = cache?.get(EmbeddingsCache.key(group.family, group.dimensions, inputs[i]!));
      if (hit) {
        vectors[i] = hit;
        cachedFrom.add(i);
      } else pending.push(i);
    }
    const used: string[] = [];
    let model: string | null = null;
    let promptTokens = 0;
    let totalTokens = 0;
    while (pending.length > 0) {
      const tokens = pending.some((i) => typeof inputs[i] !== 'string');
      const candidates = candidatesFor(group, family, tokens);
      const size = Math.min(pending.length, ...candidates.map((e) => e.maxBatch ?? Infinity));
      const batch = pending.slice(0, size);
      pending = pending.slice(size);
      const result = await this.#serveBatch(
        ctx,
        candidates,
        batch.map((i) => inputs[i]!),
      );
      if (result.kind === 'failed') return { kind: 'failed', event: result.event };
      if (result.kind === 'cancelled') return this.#ended(ctx);
      const { answer, endpoint } = result;
      if (family === null) {
        family = endpoint.family;
        if (family !== group.family && cachedFrom.size > 0) {
          // The cached vectors are of the group's family; this answer is of another one.
          pending = [...pending, ...cachedFrom].sort((a, b) => a - b);
          for (const i of cachedFrom) vectors[i] = undefined;
          cachedFrom.clear();
        }
      }
      batch.forEach((inputIndex, k) => {
        const vector = answer.vectors[k]!;
        vectors[inputIndex] = vector;
        cache?.set(EmbeddingsCache.key(endpoint.family, group.dimensions, inputs[inputIndex]!), vector);
      });
      if (!used.includes(endpoint.name)) used.push(endpoint.name);
      model ??= answer.model ?? endpoint.model;
      promptTokens += answer.promptTokens;
      totalTokens += answer.totalTokens;
    }
    const base64 = run.request.encodingFormat === 'base64';
    const response: EmbeddingsResponse = {
      object: 'list',
      data: vectors.map((v, index) => ({
        object: 'embedding',
        index,
        embedding: base64 ? toBase64(v!) : v!,
      })),
      model: model ?? usableEndpoints(group).find((e) => e.family === group.family)?.model ?? group.family,
      usage: { prompt_tokens: promptTokens, total_tokens: totalTokens },
    };
    const usage = { prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: totalTokens };
    const event: DoneEvent = {
      type: 'done',
      summary: summary(ctx, used.at(-1) ?? CACHE_ENDPOINT, usage),
      finishReason: 'stop',
    };
    return { kind: 'done', response, endpoints: used, attempts: ctx.n, event };
  }

  /** One sub-batch over its candidates; a sub-batch nothing could answer ends the request. */
  async #serveBatch(ctx: Ctx, candidates: EmbeddingsEndpoint[], inputs: EmbeddingInput[]): Promise<BatchResult> {
    const { group, run } = ctx;
    const result = await walkBatch(
      {
        dispatcher: this.#dispatcher,
        health: this.health,
        budget: this.#budget,
        group,
        extra: run.request.extra,
        abort: ctx.abort,
        remainingMs: () => (ctx.deadlineMs === null ? Infinity : ctx.deadlineMs - (performance.now() - ctx.started)),
        records: ctx.records,
        nextN: () => ++ctx.n,
        emit: (event) => run.onEvent?.(event),
      },
      candidates,
      inputs,
    );
    if (result.kind !== 'exhausted') return result;
    const skipped: SkippedEndpoint[] = [...group.skipped, ...notTried(group, candidates)];
    // The last attempt was cut to the time left: that is the deadline, whatever the attempt says.
    const late = ctx.deadlineMs !== null && performance.now() - ctx.started >= ctx.deadlineMs - 1;
    const allFailed = buildAllFailed(group.name, result.failed, skipped, late ? ctx.deadlineMs : null);
    return { kind: 'failed', event: { type: 'failed', summary: summary(ctx, null, null), ...allFailed } };
  }

  /** The request ended from outside: the client went away, or the deadline passed. */
  #ended(ctx: Ctx): EmbeddingsOutcome {
    if (!ctx.deadlineHit) return { kind: 'cancelled', event: { type: 'cancelled', summary: summary(ctx, null, null) } };
    const failures = ctx.records.filter((r) => r.class !== null);
    const failed = failures.map((r) => ({
      endpoint: r.endpoint,
      failure: { class: r.class!, message: r.message ?? '', ...(r.status !== null ? { status: r.status } : {}) },
      ms: r.ms,
    }));
    const allFailed = buildAllFailed(ctx.group.name, failed, ctx.group.skipped, ctx.deadlineMs);
    return { kind: 'failed', event: { type: 'failed', summary: summary(ctx, null, null), ...allFailed } };
  }

  /** Close the engine's own upstream connections. */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }
}

/** Endpoints allowed for the next sub-batch: the pinned family's, able to take token ids when needed. */
function candidatesFor(group: EmbeddingsGroup, family: string | null, tokens: boolean): EmbeddingsEndpoint[] {
  return usableEndpoints(group).filter((e) => (family === null || e.family === family) && (!tokens || e.tokenInputs));
}

/** Why the group's other endpoints were not tried, for the all-failed message. */
function notTried(group: EmbeddingsGroup, candidates: EmbeddingsEndpoint[]): SkippedEndpoint[] {
  return group.endpoints
    .filter((e) => !candidates.includes(e))
    .map((e) => ({
      name: e.name,
      reason:
        e.family !== group.family && !group.allowCrossFamily
          ? `not tried: family '${e.family}' is another embedding space than the group's '${group.family}' (allow_cross_family is off)`
          : 'not tried: another family than this request was answered in, or token_inputs: false',
    }));
}

function summary(ctx: Ctx, endpoint: string | null, usage: RequestSummary['usage']): RequestSummary {
  return {
    requestId: ctx.run.requestId,
    group: ctx.group.name,
    stream: false,
    endpoint,
    attempts: ctx.records,
    ms: Math.round(performance.now() - ctx.started),
    ttftMs: null,
    usage,
  };
}

/** Abort `target` when `signal` aborts; returns the way to stop listening. */
function follow(signal: AbortSignal | Cancellation | undefined, target: Cancellation): () => void {
  if (!signal) return () => {};
  if (signal instanceof Cancellation) return signal.onAbort(() => target.abort());
  if (signal.aborted) {
    target.abort();
    return () => {};
  }
  const listener = (): void => target.abort();
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}
