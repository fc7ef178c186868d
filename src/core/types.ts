/**
 * Runtime shapes shared by the whole engine: normalized profiles (what the
 * config loader hands over), failures and the typed events the engine emits.
 * The OpenAI wire types live in openai/wire.ts and are re-exported here.
 */
import type { FinishReason, Usage, ChatCompletionChunk, ChatCompletion } from './openai/wire.js';

export type * from './openai/wire.js';

/** How a group delivers reasoning to its clients (SPEC §2, §3.6). */
export type ReasoningMode = 'field' | 'tags' | 'strip';

export type EndpointType = 'openai' | 'openrouter' | 'chutes';

/** One upstream, normalized: every default applied, `${VAR}` already resolved. */
export interface Endpoint {
  /** Label in logs, headers and tables; unique inside its group. */
  name: string;
  type: EndpointType;
  /** Base URL without a trailing slash; requests go to `${baseurl}/chat/completions`. */
  baseurl: string;
  /** Resolved key; `""` for keyless local servers. Never log or echo it. */
  apikey: string;
  model: string;
  /** Milliseconds: first token / whole response / silence between chunks. */
  timeoutMs: number;
  temperature?: number;
  max_tokens?: number;
  /** How this upstream is called; undefined = as the client asked. */
  stream?: boolean;
  headers: Record<string, string>;
  params: Record<string, unknown>;
  /**
   * The model's chat template opens `<think>` in the prompt, so a streamed
   * answer starts inside the reasoning block and only `</think>` appears.
   */
  thinkOpen?: boolean;
  /**
   * Whether this endpoint continues a prefilled assistant message, so a broken
   * stream may be resumed here by prefill: `auto` (the default) = as its type
   * is documented to (only `openrouter`). Either way the continuation must
   * reproduce the held-back last words (resume-filter.ts).
   */
  prefill?: PrefillMode;
  /** Send replayed reasoning back as `reasoning_content` (endpoint option `reasoning_replay`); undefined = by model name. */
  reasoningReplay?: boolean;
  /** Key pools: one endpoint with N keys is N lanes sharing this id (the endpoint's name). */
  pool?: string;
  /** Short, non-secret fingerprint of this lane's key (e.g. `or-key-a1b2`); set with `pool`. */
  lane?: string;
  /** How a pool picks among its lanes; default `round_robin`. */
  keys?: KeyStrategy;
  /** Share of traffic under the group strategy `weighted`; default 1. */
  weight?: number;
  /** Tier under `weighted` and `latency`: lower tiers first; default 0. */
  priority?: number;
  /** Local limits, applied to each lane separately. */
  limits?: LaneLimits;
  /** Request parameters removed before sending (some upstreams reject them). */
  drop?: string[];
  /** USD per million tokens, for cost when the upstream reports none. The engine never reads it. */
  price?: EndpointPrice;
}

/** Prices in USD per million tokens. */
export interface EndpointPrice {
  input: number;
  output: number;
}

export type PrefillMode = 'auto' | boolean;

/** How a key pool orders its lanes for each request. */
export type KeyStrategy = 'round_robin' | 'fill_first' | 'random' | 'least_inflight';

/** How a group orders its endpoints for each request. */
export type GroupStrategy = 'ordered' | 'weighted' | 'latency';

/** Per-lane limits: a saturated lane is skipped, never failed. */
export interface LaneLimits {
  rpm?: number;
  tpm?: number;
  maxConcurrency?: number;
  /** The window `rpm` and `tpm` are counted over, in ms (60 000 unless set). */
  windowMs: number;
}

/** Same-endpoint retries (group option `retry`). */
export interface RetryOptions {
  /** Retries per endpoint and request; 0 = none. */
  attempts: number;
  /** Classes worth retrying on the same endpoint (`timeout` never is). */
  on: FailureClass[];
  baseMs: number;
  maxMs: number;
  /** A longer `Retry-After` moves on at once instead of waiting. */
  retryAfterMaxS: number;
}

/** An endpoint that could not be used, e.g. because its `${VAR}` is unset. */
export interface SkippedEndpoint {
  name: string;
  reason: string;
}

export interface CooldownOptions {
  /** Consecutive transient failures before cooling down. */
  failures: number;
  /** How long a transient cooldown lasts, in seconds. */
  seconds: number;
}

export interface Group {
  name: string;
  /** File the group was read from (for messages). */
  source: string;
  endpoints: Endpoint[];
  skipped: SkippedEndpoint[];
  reasoning: ReasoningMode;
  cooldown: CooldownOptions;
  /** Resilience options (SPEC §3.11); undefined = the defaults. */
  retry?: RetryOptions;
  /** Continue a stream that broke after commit from the next attempt. Default true. */
  resume?: boolean;
  /** Start the next endpoint in parallel when the first token is this late (ms); null = off. */
  hedgeMs?: number | null;
  /** Bound on the whole request (ms); null = none. */
  deadlineMs?: number | null;
  /** Treat a content-filter refusal as a failure to fail over from. Default true. */
  failoverOnContentFilter?: boolean;
  /**
   * Seconds without a commit after which a streaming front door sends its
   * head and opening event, then keep-alives (group option `early_start_s`);
   * null = off, undefined = the front door's default.
   */
  earlyStartS?: number | null;
  /** Order of endpoints per request; default `ordered` (file order). */
  strategy?: GroupStrategy;
  /** Idle ms a conversation stays pinned to the lane that last answered it; null = off. Default 10 min. */
  stickyTtlMs?: number | null;
}

// ---------------------------------------------------------------------------
// Failures (SPEC §3.2).

export const FAILURE_CLASSES = [
  'network',
  'timeout',
  'auth',
  'permission',
  'payment',
  'rate_limit',
  'not_found',
  'bad_request',
  'server',
  'invalid_response',
  'stream_interrupted',
  'content_filter',
] as const;

export type FailureClass = (typeof FAILURE_CLASSES)[number];

/** One failed attempt, classified. `message` is already redacted of keys. */
export interface Failure {
  class: FailureClass;
  /** Upstream HTTP status when there was one. */
  status?: number;
  message: string;
  /** From `Retry-After` (rate_limit) in milliseconds. */
  retryAfterMs?: number;
  /**
   * A refusal (class `content_filter`): the answer as the provider gave it,
   * for the client when no endpoint answers otherwise.
   */
  answer?: ChatCompletion;
}

/** One line of the per-request trace (SPEC §3.8 `attempts`). */
export interface AttemptRecord {
  endpoint: string;
  class: FailureClass | null;
  status: number | null;
  message: string | null;
  ms: number;
  /** The request was sent to this endpoint twice (a stale kept-alive socket): why. */
  resent?: string;
}

// ---------------------------------------------------------------------------
// Engine events: the one stream every consumer (server, ask, probe, logger) reads.

export interface AttemptStartEvent {
  type: 'attempt_start';
  /** 1-based attempt number inside the request. */
  n: number;
  endpoint: string;
  model: string;
  /** The endpoint was cooling and is tried late (a half-open probe or a last resort). */
  cooling: boolean;
}

export interface AttemptFailedEvent {
  type: 'attempt_failed';
  n: number;
  endpoint: string;
  failure: Failure;
  ms: number;
  /** True when the failure happened after commit (the client saw part of the answer). */
  afterCommit: boolean;
}

export interface CommitEvent {
  type: 'commit';
  n: number;
  endpoint: string;
  /** The upstream model that answers (reported `model`, else the endpoint's). */
  model: string;
  ttftMs: number;
}

/**
 * Normalized output chunks, never an empty list; emitted only for streaming
 * requests, after commit. One event carries what one upstream read brought,
 * so a consumer can write them to its client at once.
 */
export interface ChunksEvent {
  type: 'chunks';
  chunks: ChatCompletionChunk[];
}

/** The final answer of a non-streaming request. */
export interface CompletionEvent {
  type: 'completion';
  completion: ChatCompletion;
}

export interface RequestSummary {
  requestId: string;
  group: string;
  stream: boolean;
  endpoint: string | null;
  attempts: AttemptRecord[];
  ms: number;
  ttftMs: number | null;
  usage: Usage | null;
}

/** The request was answered completely. */
export interface DoneEvent {
  type: 'done';
  summary: RequestSummary;
  finishReason: FinishReason;
}

/** A committed stream broke; the client stream must end with `error` (SPEC §3.4). */
export interface InterruptedEvent {
  type: 'interrupted';
  summary: RequestSummary;
  failure: Failure;
  /** The in-band error payload to send as the last SSE event. */
  error: OpenAIErrorBody;
}

/** Nothing was committed and every endpoint failed (SPEC §3.8). */
export interface FailedEvent {
  type: 'failed';
  summary: RequestSummary;
  status: number;
  headers: Record<string, string>;
  error: OpenAIErrorBody;
}

/** The caller aborted (client disconnect, Ctrl-C). */
export interface CancelledEvent {
  type: 'cancelled';
  summary: RequestSummary;
}

/** An attempt stopped without failing: a hedged attempt lost the race, or the request ended first. */
export interface AttemptAbandonedEvent {
  type: 'attempt_abandoned';
  n: number;
  endpoint: string;
  ms: number;
  reason: string;
}

/** A committed stream broke and continues from another attempt (group option `resume`). */
export interface ResumeEvent {
  type: 'resume';
  n: number;
  endpoint: string;
  /** `prefill`: the partial answer was sent as an assistant message; `restart`: asked again, repeated prefix dropped. */
  mode: 'prefill' | 'restart';
  /** Characters of the answer already delivered that the new attempt builds on. */
  reusedChars: number;
}

export type EngineEvent =
  | AttemptStartEvent
  | AttemptAbandonedEvent
  | ResumeEvent
  | AttemptFailedEvent
  | CommitEvent
  | ChunksEvent
  | CompletionEvent
  | DoneEvent
  | InterruptedEvent
  | FailedEvent
  | CancelledEvent;

export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
    [key: string]: unknown;
  };
}
