/**
 * `POST /v1/embeddings` (the front door of `kind: embeddings` groups): the
 * client's body to the embeddings engine's request, its outcome to OpenAI's
 * answer or error shape. Observers see the engine's events like chat ones.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Cancellation } from '../core/cancellation.js';
import type { EmbeddingsEngine } from '../core/embeddings/engine.js';
import { parseEmbeddingsRequest } from '../core/embeddings/input.js';
import { isEmbeddingsGroup } from '../core/embeddings/types.js';
import type { EngineObserver, RequestContext } from '../core/observe.js';
import { BodyTooLargeError, readBody, sendError, sendJson, type Headers } from './http.js';
import type { GroupRegistry } from './registry.js';

export interface EmbeddingsRoute {
  engine: EmbeddingsEngine;
  groups: GroupRegistry;
  observers: readonly EngineObserver[];
  maxBody: number;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export async function serveEmbeddings(
  route: EmbeddingsRoute,
  req: IncomingMessage,
  res: ServerResponse,
  headers: Headers,
  requestId: string,
): Promise<void> {
  let raw: Buffer | null;
  try {
    raw = await readBody(req, route.maxBody);
  } catch (err) {
    if (!(err instanceof BodyTooLargeError)) throw err;
    res.setHeader('connection', 'close');
    return sendError(
      res,
      413,
      `Request body is larger than ${route.maxBody} bytes`,
      'invalid_request_error',
      'request_too_large',
      null,
      headers,
    );
  }
  if (raw === null) return;
  let body: unknown;
  try {
    body = JSON.parse(UTF8.decode(raw));
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message : 'the body is not valid UTF-8';
    return sendError(res, 400, `Invalid request body: ${why}`, 'invalid_request_error', 'invalid_json', null, headers);
  }
  const model = (body as { model?: unknown } | null)?.model;
  if (typeof model !== 'string' || model === '') {
    return sendError(
      res,
      400,
      'Invalid request body: "model" (a group name) is required',
      'invalid_request_error',
      'invalid_json',
      'model',
      headers,
    );
  }
  const group = route.groups.get(model);
  if (!group) {
    const names = route.groups
      .all()
      .filter(isEmbeddingsGroup)
      .map((g) => g.name);
    const known = names.length > 0 ? `Embeddings groups: ${names.join(', ')}` : 'No group has kind: embeddings';
    return sendError(
      res,
      404,
      `The model (group) '${model}' does not exist. ${known}.`,
      'invalid_request_error',
      'model_not_found',
      'model',
      headers,
    );
  }
  if (!isEmbeddingsGroup(group)) {
    const message = `Group '${model}' is a chat group; /v1/embeddings needs a group with kind: embeddings`;
    return sendError(res, 400, message, 'invalid_request_error', 'wrong_group_kind', 'model', headers);
  }
  const parsed = parseEmbeddingsRequest(body, group);
  if (!parsed.ok)
    return sendError(
      res,
      400,
      `Invalid embeddings request: ${parsed.message}`,
      'invalid_request_error',
      parsed.code,
      parsed.param,
      headers,
    );

  const cancellation = new Cancellation();
  res.on('close', () => {
    if (!res.writableFinished) cancellation.abort();
  });
  const context: RequestContext = {
    requestId,
    group: group.name,
    stream: false,
    source: 'serve',
    repaired: false,
    messages: [],
  };
  const outcome = await route.engine.run({
    requestId,
    group,
    request: parsed.request,
    signal: cancellation,
    onEvent: (event) => {
      for (const observer of route.observers) observer.onEvent(context, event);
    },
  });
  switch (outcome.kind) {
    case 'done':
      headers['x-failproxy-endpoint'] = outcome.endpoints.length > 0 ? outcome.endpoints.join(', ') : 'cache';
      headers['x-failproxy-attempts'] = String(outcome.attempts);
      return sendJson(res, 200, outcome.response, headers);
    case 'failed':
      return sendJson(res, outcome.event.status, outcome.event.error, { ...headers, ...outcome.event.headers });
    case 'cancelled':
      res.destroy();
      return;
  }
}
