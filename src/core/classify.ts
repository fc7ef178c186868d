/**
 * The only place that turns raw upstream behaviour into a failure class
 * (SPEC §3.2): undici error codes, HTTP statuses, bodies and stream events.
 * Decisions are made on codes and statuses, never on message text; messages
 * are only extracted so people can read why.
 */
import { redactSecrets } from './redact.js';
import type { Failure, FailureClass, JsonObject } from './types.js';

/** Map a non-2xx HTTP status to its class. */
export function classifyStatus(status: number): FailureClass {
  switch (status) {
    case 401:
      return 'auth';
    case 402:
      return 'payment';
    case 403:
      return 'permission';
    case 404:
      return 'not_found';
    case 408:
      return 'timeout';
    case 429:
      return 'rate_limit';
    case 400:
    case 413:
    case 422:
      return 'bad_request';
    default:
      if (status >= 500) return 'server';
      // Anything else (409, 418, 3xx that was not followed…) is an upstream we cannot use.
      return status >= 400 ? 'bad_request' : 'invalid_response';
  }
}

/** Error codes that mean the attempt ran out of time rather than lost its connection. */
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
]);

/** Classify a thrown transport error (undici / Node socket / DNS / TLS). */
export function classifyTransportError(err: unknown): Failure {
  const code = errorCode(err);
  const klass: FailureClass = code !== undefined && TIMEOUT_CODES.has(code) ? 'timeout' : 'network';
  return { class: klass, message: describeTransportError(err, code) };
}

/** The upstream's host refused the connection: nothing listens on its port. */
export function isConnectionRefused(err: unknown): boolean {
  return errorCode(err) === 'ECONNREFUSED';
}

function errorCode(err: unknown): string | undefined {
  // undici wraps socket errors (UND_ERR_SOCKET) around a more precise cause.
  let fallback: string | undefined;
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (code !== 'UND_ERR_SOCKET') return code;
      fallback = code;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return fallback;
}

const TRANSPORT_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed by upstream',
  UND_ERR_CLOSED: 'connection closed',
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
  UND_ERR_HEADERS_TIMEOUT: 'no response headers in time',
  UND_ERR_BODY_TIMEOUT: 'response body stalled',
};

/** String(x) throws for objects without a prototype (or a throwing toString); anything can be thrown. */
function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function describeTransportError(err: unknown, code: string | undefined): string {
  const words = code ? TRANSPORT_WORDS[code] : undefined;
  if (words) return `${words} (${code})`;
  const message = err instanceof Error ? err.message : safeString(err);
  return redactSecrets(code ? `${message} (${code})` : message);
}

/**
 * `Retry-After` as milliseconds: delta-seconds or an HTTP date; `retry-after-ms`
 * (OpenAI's) wins when present. Undefined when absent or unparsable.
 */
export function parseRetryAfter(
  retryAfter: string | undefined,
  retryAfterMs?: string,
  now: number = Date.now(),
): number | undefined {
  if (retryAfterMs !== undefined) {
    const ms = Number(retryAfterMs);
    if (Number.isFinite(ms) && ms >= 0) return ms;
  }
  if (retryAfter === undefined || retryAfter.trim() === '') return undefined;
  const seconds = Number(retryAfter);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A non-2xx response, with the upstream's message extracted from whatever it sent. */
export function failureFromResponse(
  status: number,
  contentType: string | undefined,
  bodyText: string,
  retryAfterMs?: number,
): Failure {
  const klass = status >= 400 && status < 500 && namesContentPolicy(errorCodeIn(bodyText)) ? 'content_filter' : classifyStatus(status);
  const failure: Failure = {
    class: klass,
    status,
    message: extractUpstreamMessage(bodyText, contentType, status),
  };
  if (failure.class === 'rate_limit' && retryAfterMs !== undefined) failure.retryAfterMs = retryAfterMs;
  return failure;
}

/** Error codes providers use for a content-policy refusal (OpenAI, Azure, others). */
const CONTENT_POLICY_CODE = /content_?(filter|policy)|moderation|safety/i;

function namesContentPolicy(code: string | undefined): boolean {
  return code !== undefined && CONTENT_POLICY_CODE.test(code);
}

/** The machine-readable `error.code` (or `error.type`) of an error body, when it has one. */
function errorCodeIn(bodyText: string): string | undefined {
  const text = bodyText.trim();
  if (!text.startsWith('{') && !text.startsWith('[')) return undefined;
  try {
    let value = JSON.parse(text) as unknown;
    if (Array.isArray(value)) value = value[0];
    const error = (value as { error?: unknown } | null)?.error;
    if (!error || typeof error !== 'object') return undefined;
    const { code, type } = error as { code?: unknown; type?: unknown };
    if (typeof code === 'string') return code;
    return typeof type === 'string' ? type : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An `error` carried inside a 2xx body or stream event (OpenRouter, llama.cpp,
 * Chutes). Returns null when the value carries no error.
 */
export function failureFromErrorPayload(payload: JsonObject): Failure | null {
  const error = payload.error;
  if (error === undefined || error === null || error === false) return null;
  const message = messageFromJson(payload) ?? 'upstream sent an error';
  const failure: Failure = { class: 'invalid_response', message: redactSecrets(message) };
  const code = typeof error === 'object' ? (error as { code?: unknown }).code : undefined;
  const numeric = typeof code === 'string' ? Number(code) : code;
  if (typeof numeric === 'number' && numeric >= 100 && numeric <= 599) failure.status = numeric;
  return failure;
}

const MAX_MESSAGE = 500;

/**
 * The human message inside any upstream error body (WIRE §5): OpenAI
 * `{error:{message}}` (OpenRouter's `metadata.raw` appended), `{error:"…"}`,
 * FastAPI `{detail}`, flat vLLM `{message}`, Gemini `[{error}]`,
 * SiliconFlow `{code,message}`, HTML pages (their title), plain text, nothing.
 */
export function extractUpstreamMessage(
  bodyText: string,
  contentType: string | undefined,
  status?: number,
): string {
  const text = bodyText.trim();
  let message: string | undefined;
  if (text.startsWith('{') || text.startsWith('[')) {
    try {
      message = messageFromJson(JSON.parse(text) as unknown);
    } catch {
      // Not JSON after all: fall through to the text forms.
    }
  }
  if (message === undefined && (contentType?.includes('html') || /^<(!doctype|html)/i.test(text))) {
    message = htmlTitle(text);
  }
  if (message === undefined && text !== '') message = text.replace(/\s+/g, ' ');
  if (message === undefined) message = status ? `HTTP ${status} with an empty body` : 'empty body';
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE)}…`;
  return redactSecrets(message);
}

function messageFromJson(value: unknown): string | undefined {
  if (Array.isArray(value)) return value.length > 0 ? messageFromJson(value[0]) : undefined;
  if (typeof value === 'string') return value;
  if (!value || typeof value !== 'object') return undefined;
  const obj = value as JsonObject;
  if (obj.error !== undefined && obj.error !== null) {
    if (typeof obj.error === 'string') return obj.error;
    const inner = obj.error as JsonObject;
    const base = typeof inner.message === 'string' ? inner.message : messageFromJson(inner);
    const raw = (inner.metadata as JsonObject | undefined)?.raw;
    if (typeof raw === 'string' && raw !== '' && raw !== base) return `${base ?? 'error'}: ${raw}`;
    return base ?? JSON.stringify(inner);
  }
  if (obj.detail !== undefined) {
    if (typeof obj.detail === 'string') return obj.detail;
    const detail = messageFromJson(obj.detail);
    return detail ?? JSON.stringify(obj.detail);
  }
  if (typeof obj.message === 'string') return obj.message;
  if (typeof obj.msg === 'string') return obj.msg;
  return undefined;
}

function htmlTitle(html: string): string {
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(html)?.[1]?.trim();
  if (title) return `HTML error page: ${title.replace(/\s+/g, ' ')}`;
  const h1 = /<h1[^>]*>([^<]*)<\/h1>/i.exec(html)?.[1]?.trim();
  return h1 ? `HTML error page: ${h1}` : 'HTML error page';
}

/**
 * A complete 2xx body as the JSON object it should be, or why it is not
 * usable: empty, an HTML page, not JSON, not an object, or an error carried
 * in a 200 (`{error}`, `{object: "error"}`). A top-level array is judged by
 * its first element (Gemini-style error lists).
 */
export function parseAnswerBody(text: string, contentType: string): { payload: JsonObject } | { failure: Failure } {
  const trimmed = text.trim();
  const invalid = (message: string): { failure: Failure } => ({ failure: { class: 'invalid_response', message } });
  if (trimmed === '') return invalid('empty response body');
  if (trimmed.startsWith('<')) return invalid(extractUpstreamMessage(trimmed, contentType || 'text/html'));
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    return invalid(`response is not JSON: ${extractUpstreamMessage(trimmed, contentType)}`);
  }
  const payload: unknown = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!payload || typeof payload !== 'object') return invalid('response is not a JSON object');
  const obj = payload as JsonObject;
  const inBody = failureFromErrorPayload(obj);
  if (inBody) return { failure: inBody };
  if (obj.object === 'error') return invalid(extractUpstreamMessage(trimmed, contentType));
  return { payload: obj };
}
