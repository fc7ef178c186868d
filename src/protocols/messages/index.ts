/**
 * `POST /v1/messages`: the Anthropic Messages API (what Claude Code speaks)
 * over a group's chat endpoints, and `POST /v1/messages/count_tokens`,
 * answered locally.
 */
import { estimateTokens } from '../estimate.js';
import { processSigner, type ThinkingSigner } from '../thinking-signature.js';
import type { Exchange, FrontDoor, GroupResolver, Reply } from '../types.js';
import { isObj, ProtocolError } from '../util.js';
import { translateMessagesRequest } from './request.js';
import { errorBody, toMessage } from './shape.js';
import { MessagesStreamWriter } from './stream.js';

/** Claude Code's stall watchdog is the shortest reported (about 15 s); start well before it. */
const DEFAULT_EARLY_START_S = 5;

export function messagesFrontDoor(signer: ThinkingSigner = processSigner): FrontDoor {
  return {
    api: 'messages',
    defaultEarlyStartS: DEFAULT_EARLY_START_S,
    error: (status, message) => ({ status, body: errorBody(status, message) }),
    accept(body, resolve, groupNames) {
      const checked = checkBody(body, resolve, groupNames);
      if ('status' in checked) return checked;
      let translated;
      try {
        translated = translateMessagesRequest(checked.body, signer);
      } catch (err) {
        if (err instanceof ProtocolError) return { status: err.status, body: errorBody(err.status, err.message) };
        throw err;
      }
      const { chat, toolNames } = translated;
      const estimatedInput = estimateTokens(checked.body.system, checked.body.messages, checked.body.tools);
      const exchange: Exchange = {
        chat,
        group: checked.group,
        stream: chat.stream === true,
        headers: {},
        streamWriter: () => new MessagesStreamWriter(estimatedInput, toolNames, signer),
        completion: (completion) => toMessage(completion, toolNames, signer, estimatedInput),
        failure: (event) => ({
          status: event.status,
          body: errorBody(event.status, event.error.error.message),
          headers: event.headers,
        }),
      };
      return exchange;
    },
  };
}

/** `count_tokens`: a conservative local estimate, never a 404 and never an upstream call. */
export function countTokens(body: unknown): Reply {
  if (!isObj(body) || !Array.isArray(body.messages)) {
    return { status: 400, body: errorBody(400, "'messages' must be an array") };
  }
  return {
    status: 200,
    body: { input_tokens: estimateTokens(body.system, body.messages, body.tools) },
    headers: { 'x-failproxy-estimate': 'true' },
  };
}

function checkBody(
  body: unknown,
  resolve: GroupResolver,
  groupNames: string[],
): { body: Record<string, unknown>; group: NonNullable<ReturnType<GroupResolver>> } | Reply {
  if (!isObj(body)) return { status: 400, body: errorBody(400, 'the body must be a JSON object') };
  if (typeof body.model !== 'string' || body.model === '') {
    return { status: 400, body: errorBody(400, "missing required field 'model'") };
  }
  if (body.stream !== undefined && typeof body.stream !== 'boolean') {
    return { status: 400, body: errorBody(400, "'stream' must be a boolean") };
  }
  const group = resolve(body.model);
  if (!group) {
    const known = groupNames.length > 0 ? `Available groups: ${groupNames.join(', ')}` : 'No groups are configured';
    const hint = 'map other names with serve --model-map PATTERN=GROUP';
    return { status: 404, body: errorBody(404, `model: '${body.model}' is not a group. ${known}; ${hint}.`) };
  }
  return { body, group };
}
