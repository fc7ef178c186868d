/**
 * `POST /v1/responses`: the OpenAI Responses API (what Codex CLI speaks) over
 * a group's chat endpoints.
 */
import type { ChatCompletion, ChatMessage } from '../../core/types.js';
import { processSigner, type ThinkingSigner } from '../thinking-signature.js';
import type { Exchange, FrontDoor, Reply } from '../types.js';
import { isObj, newId, ProtocolError, type Obj } from '../util.js';
import { translateResponsesRequest } from './request.js';
import {
  assistantHistory,
  callItem,
  messageItem,
  reasoningItem,
  responseObject,
  responsesUsage,
  terminalFields,
  terminalOf,
  type AnswerParts,
  type ResponseFrame,
} from './shape.js';
import { ResponseStore } from './store.js';
import { ResponsesStreamWriter } from './stream.js';

/** Codex's idle timeout is minutes, but proxies in between cut sooner; a few seconds costs nothing. */
const DEFAULT_EARLY_START_S = 5;

export interface ResponsesFrontDoorOptions {
  store?: ResponseStore;
  signer?: ThinkingSigner;
}

export function responsesFrontDoor(options: ResponsesFrontDoorOptions = {}): FrontDoor {
  const store = options.store ?? new ResponseStore();
  const signer = options.signer ?? processSigner;
  const error = (status: number, message: string, code: string | null = null, param: string | null = null): Reply => ({
    status,
    body: {
      error: { message, type: status === 404 || status < 500 ? 'invalid_request_error' : 'server_error', param, code },
    },
  });
  return {
    api: 'responses',
    defaultEarlyStartS: DEFAULT_EARLY_START_S,
    error: (status, message) => error(status, message),
    accept(body, resolve, groupNames) {
      if (!isObj(body)) return error(400, 'the body must be a JSON object');
      if (typeof body.model !== 'string' || body.model === '')
        return error(400, "missing required field 'model' (a group name)", null, 'model');
      if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
        return error(400, "'stream' must be a boolean", null, 'stream');
      }
      const group = resolve(body.model);
      if (!group) {
        const known = groupNames.length > 0 ? `Available groups: ${groupNames.join(', ')}` : 'No groups are configured';
        return error(404, `The model (group) '${body.model}' does not exist. ${known}.`, 'model_not_found', 'model');
      }
      let previous: ChatMessage[] = [];
      if (typeof body.previous_response_id === 'string') {
        const found = store.get(body.previous_response_id);
        if (!found) {
          const message = `Previous response '${body.previous_response_id}' is not known to this FailProxy process (expired, evicted, stored with store:false, or from before a restart); send the full input instead.`;
          return error(400, message, 'previous_response_not_found', 'previous_response_id');
        }
        previous = found;
      }
      let translated;
      try {
        translated = translateResponsesRequest(body, previous, signer);
      } catch (err) {
        if (err instanceof ProtocolError) return error(err.status, err.message, 'unsupported_parameter');
        throw err;
      }
      const include = Array.isArray(body.include) ? body.include : [];
      const frame: ResponseFrame = {
        id: newId('resp_'),
        createdAt: Math.floor(Date.now() / 1000),
        request: body,
        customTools: translated.customTools,
        encryptedReasoning: include.includes('reasoning.encrypted_content'),
        signer,
      };
      const remember = (parts: AnswerParts): void => {
        if (body.store !== false) store.set(frame.id, [...translated.history, assistantHistory(parts)]);
      };
      const headers: Record<string, string> = {};
      if (translated.repairs > 0) headers['x-failproxy-repaired-history'] = String(translated.repairs);
      const exchange: Exchange = {
        chat: translated.chat,
        group,
        stream: translated.chat.stream === true,
        headers,
        streamWriter: () => new ResponsesStreamWriter(frame, remember),
        completion: (completion) => {
          const { output, parts } = outputOf(frame, completion);
          remember(parts);
          const finish = completion.choices[0]?.finish_reason ?? 'stop';
          const terminal = terminalOf(finish);
          return responseObject(
            frame,
            completion.model,
            terminal.status,
            output,
            terminalFields(terminal, responsesUsage(completion.usage)),
          );
        },
        failure: (event) => ({ status: event.status, body: event.error, headers: event.headers }),
      };
      return exchange;
    },
  };
}

function outputOf(frame: ResponseFrame, completion: ChatCompletion): { output: Obj[]; parts: AnswerParts } {
  const message = completion.choices[0]?.message;
  const parts: AnswerParts = {
    reasoning: typeof message?.reasoning_content === 'string' ? message.reasoning_content : '',
    text: typeof message?.content === 'string' ? message.content : '',
    calls: (message?.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, args: c.function.arguments })),
  };
  const output: Obj[] = [];
  if (parts.reasoning !== '') output.push(reasoningItem(frame, newId('rs_'), parts.reasoning));
  if (parts.text !== '') output.push(messageItem(newId('msg_'), parts.text, 'completed'));
  for (const call of parts.calls) output.push(callItem(frame, newId('fc_'), call.id, call.name, call.args, true));
  return { output, parts };
}
