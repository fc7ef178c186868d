/**
 * Runtime shapes shared by the whole engine: normalized profiles (what the
 * config loader hands over), OpenAI wire types (the subset the proxy reads and
 * writes), failures and the typed events the engine emits.
 */

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
   * Whether a broken stream may be continued here by prefilling the partial
   * answer as an assistant message: `auto` tries and falls back to a restart
   * when the endpoint rejects it. Default `auto`.
   */
  prefill?: PrefillMode;
  /** USD per million tokens, for cost when the upstream reports none. The engine never reads it. */
  price?: EndpointPrice;
}

/** Prices in USD per million tokens. */
export interface EndpointPrice {
  input: number;
  output: number;
}

export type PrefillMode = 'auto' | boolean;

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
}

// ---------------------------------------------------------------------------
// OpenAI wire types (only what the proxy touches; everything else passes through).

export type JsonObject = Record<string, unknown>;

export interface ChatMessage {
  role: string;
  content?: unknown;
  [key: string]: unknown;
}

/** A client's chat request after repair and validation. Unknown fields are kept. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean; [key: string]: unknown } | null;
  [key: string]: unknown;
}

export interface ToolCallFunction {
  name?: string;
  arguments?: string;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: ToolCallFunction;
}

export interface Delta {
  role?: 'assistant';
  content?: string | null;
  reasoning_content?: string;
  tool_calls?: ToolCallDelta[];
  [key: string]: unknown;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

export interface ChunkChoice {
  index: number;
  delta: Delta;
  logprobs?: unknown;
  finish_reason: FinishReason | null;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  [key: string]: unknown;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: ChunkChoice[];
  usage?: Usage | null;
  [key: string]: unknown;
}

export interface AssistantMessage {
  role: 'assistant';
  content: string | null;
  reasoning_content?: string;
  tool_calls?: ToolCall[];
  refusal?: string | null;
  [key: string]: unknown;
}

export interface CompletionChoice {
  index: number;
  message: AssistantMessage;
  logprobs: unknown;
  finish_reason: FinishReason;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: Usage;
  [key: string]: unknown;
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
}

/** One line of the per-request trace (SPEC §3.8 `attempts`). */
export interface AttemptRecord {
  endpoint: string;
  class: FailureClass | null;
  status: number | null;
  message: string | null;
  ms: number;
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
