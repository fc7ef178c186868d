/**
 * One upstream `/embeddings` call: a plain JSON request on the engine's undici
 * dispatcher, bounded as a whole by the endpoint's `timeout` and cancelled at
 * once when the request is. Failures are classified by classify.ts, like chat.
 */
import type { Dispatcher } from 'undici';
import type { Cancellation } from '../cancellation.js';
import { classifyTransportError, failureFromResponse, parseRetryAfter } from '../classify.js';
import type { Failure } from '../types.js';
import { requestOn, upstreamHeaders } from '../upstream-target.js';
import { judgeEmbeddingsBody, type ValidAnswer } from './answer.js';
import type { EmbeddingInput, EmbeddingsEndpoint } from './types.js';

export type CallResult =
  { kind: 'ok'; answer: ValidAnswer } | { kind: 'failure'; failure: Failure } | { kind: 'cancelled' };

export interface CallSpec {
  endpoint: EmbeddingsEndpoint;
  inputs: EmbeddingInput[];
  dimensions: number;
  /** Client fields passed through (e.g. `user`). */
  extra: Record<string, unknown>;
  timeoutMs: number;
  cancel: Cancellation;
}

const MAX_ERROR_BODY = 64 * 1024;
/** 2048 inputs of 3072 floats as JSON text is ~120 MB; past this it is not an answer we can hold. */
const MAX_ANSWER_BODY = 256 * 1024 * 1024;

/**
 * The upstream body: always `float` (many servers mishandle `base64`; we
 * encode it ourselves), the group's `dimensions` unless the endpoint
 * rejects the field, then the endpoint's `params`.
 */
export function buildEmbeddingsBody(spec: Pick<CallSpec, 'endpoint' | 'inputs' | 'dimensions' | 'extra'>): string {
  const { endpoint } = spec;
  const body: Record<string, unknown> = {
    ...spec.extra,
    model: endpoint.model,
    input: spec.inputs,
    encoding_format: 'float',
  };
  if (endpoint.sendDimensions) body.dimensions = spec.dimensions;
  for (const key in endpoint.params) body[key] = endpoint.params[key];
  return JSON.stringify(body);
}

export async function callEmbeddings(dispatcher: Dispatcher, spec: CallSpec): Promise<CallResult> {
  const { endpoint, cancel } = spec;
  if (cancel.aborted) return { kind: 'cancelled' };
  const url = new URL(`${endpoint.baseurl}/embeddings`);
  const headers = upstreamHeaders(endpoint, 'application/json');
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, spec.timeoutMs);
  const offCancel = cancel.onAbort(() => controller.abort());
  const timeout = (): CallResult => ({
    kind: 'failure',
    failure: { class: 'timeout', message: `no complete answer within ${Math.round(spec.timeoutMs / 100) / 10} s` },
  });
  try {
    const response = await requestOn(dispatcher, {
      origin: url.origin,
      path: url.pathname + url.search,
      method: 'POST',
      headers,
      body: buildEmbeddingsBody(spec),
      signal: controller.signal,
    });
    const contentType = headerValue(response.headers['content-type']);
    const ok = response.statusCode >= 200 && response.statusCode < 300;
    const text = await readText(response.body, ok ? MAX_ANSWER_BODY : MAX_ERROR_BODY);
    if (!ok) {
      const retryAfter = parseRetryAfter(
        headerValue(response.headers['retry-after']) || undefined,
        headerValue(response.headers['retry-after-ms']) || undefined,
      );
      return {
        kind: 'failure',
        failure: failureFromResponse(response.statusCode, contentType, text ?? '', retryAfter),
      };
    }
    if (text === null)
      return {
        kind: 'failure',
        failure: { class: 'invalid_response', message: `answer larger than ${MAX_ANSWER_BODY} bytes` },
      };
    const verdict = judgeEmbeddingsBody(text, contentType, spec.inputs.length, spec.dimensions);
    return 'answer' in verdict ? { kind: 'ok', answer: verdict.answer } : { kind: 'failure', failure: verdict.failure };
  } catch (err) {
    if (timedOut) return timeout();
    if (cancel.aborted) return { kind: 'cancelled' };
    return { kind: 'failure', failure: classifyTransportError(err) };
  } finally {
    clearTimeout(timer);
    offCancel();
  }
}

function headerValue(value: string | string[] | undefined): string {
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

/** The body as text; null past `limit` bytes (an error body is cut there instead). */
async function readText(body: Dispatcher.ResponseData['body'], limit: number): Promise<string | null> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      body.destroy();
      if (limit !== MAX_ERROR_BODY) return null;
      parts.push(buf.subarray(0, buf.length - (size - limit)));
      break;
    }
    parts.push(buf);
  }
  return Buffer.concat(parts).toString('utf8');
}
