/**
 * What the client gets when nothing could be committed (SPEC §3.8) or when a
 * committed stream broke (SPEC §3.4), in the OpenAI error shape.
 */
import type { AttemptRecord, Failure, FailureClass, OpenAIErrorBody, SkippedEndpoint } from './types.js';

export interface FailedAttempt {
  endpoint: string;
  failure: Failure;
  ms: number;
}

export interface AllFailed {
  status: number;
  headers: Record<string, string>;
  error: OpenAIErrorBody;
}

/**
 * The status rule: the shared 4xx when every attempt returned the same one,
 * 429 (with the smallest `Retry-After`) when all were rate-limited, 504 when
 * all timed out, else 502. `x-should-retry: false` stops SDKs from walking
 * the whole group again; the clients that retry anyway (the AI SDK,
 * LangChain) get `Retry-After` and `retry-after-ms` whenever FailProxy knows
 * when an endpoint will be usable again: `coolingMs`, the earliest end of the
 * group's cooldowns, or for an all-429 answer the smallest upstream
 * `Retry-After`.
 */
export function buildAllFailed(
  group: string,
  failed: readonly FailedAttempt[],
  skipped: readonly SkippedEndpoint[],
  deadlineMs: number | null = null,
  coolingMs: number | null = null,
): AllFailed {
  const headers: Record<string, string> = { 'x-should-retry': 'false' };
  const status = deadlineMs !== null ? 504 : allFailedStatus(failed);
  const waits = status === 429 ? failed.map((a) => a.failure.retryAfterMs).filter((ms): ms is number => ms !== undefined) : [];
  const waitMs = coolingMs ?? (waits.length > 0 ? Math.min(...waits) : null);
  if (waitMs !== null) {
    headers['retry-after'] = String(Math.ceil(waitMs / 1000));
    headers['retry-after-ms'] = String(Math.ceil(waitMs));
  }
  const parts = failed.map((a) => `[${a.endpoint}] ${describeFailure(a.failure)}`);
  for (const s of skipped) parts.push(`[${s.name}] skipped: ${s.reason}`);
  const total = failed.length + skipped.length;
  const head =
    deadlineMs !== null
      ? `The deadline of ${deadlineMs / 1000} s for '${group}' was reached after ${failed.length} attempt${failed.length === 1 ? '' : 's'}`
      : total === 0
        ? `Group '${group}' has no endpoints`
        : `All ${total} endpoint${total === 1 ? '' : 's'} for '${group}' failed`;
  const attempts: AttemptRecord[] = failed.map((a) => ({
    endpoint: a.endpoint,
    class: a.failure.class,
    status: a.failure.status ?? null,
    message: a.failure.message,
    ms: a.ms,
  }));
  return {
    status,
    headers,
    error: {
      error: {
        message: parts.length > 0 ? `${head}: ${parts.join('; ')}` : head,
        type: 'failproxy_error',
        param: null,
        code: 'all_endpoints_failed',
        attempts,
      },
    },
  };
}

function allFailedStatus(failed: readonly FailedAttempt[]): number {
  if (failed.length === 0) return 502;
  const first = failed[0]!.failure;
  if (failed.every((a) => a.failure.class === 'rate_limit')) return 429;
  if (
    first.status !== undefined &&
    first.status >= 400 &&
    first.status < 500 &&
    failed.every((a) => a.failure.status === first.status && isHttpClass(a.failure.class))
  ) {
    return first.status;
  }
  if (failed.every((a) => a.failure.class === 'timeout')) return 504;
  return 502;
}

/** Classes that come from an HTTP status (a 200 carrying `error: {code: 400}` does not count). */
function isHttpClass(klass: FailureClass): boolean {
  return klass !== 'invalid_response' && klass !== 'stream_interrupted' && klass !== 'network';
}

export function describeFailure(failure: Failure): string {
  const status = failure.status !== undefined ? ` ${failure.status}` : '';
  return `${failure.class}${status}: ${failure.message}`;
}

/** `failover_on_content_filter: false`: the provider's refusal, as it gave it. */
export function contentFilterError(failure: Failure): AllFailed {
  return {
    status: failure.status ?? 400,
    headers: { 'x-should-retry': 'false' },
    error: { error: { message: failure.message, type: 'invalid_request_error', param: null, code: 'content_filter' } },
  };
}

/** The last SSE event of a committed stream that broke (no `choices`: both SDKs raise it). */
export function interruptedError(failure: Failure, note?: string): OpenAIErrorBody {
  return {
    error: {
      message: `The upstream stream broke after the answer started: ${describeFailure(failure)}${note ? ` (${note})` : ''}`,
      type: 'failproxy_error',
      param: null,
      code: 'stream_interrupted',
    },
  };
}
