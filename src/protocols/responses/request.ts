/**
 * A Responses API request as the engine's chat request. Stateless first: Codex
 * sends `store: false` and its whole history as `input` every turn. Hosted
 * tools cannot run on a chat endpoint and are refused by name; item types we
 * do not know are skipped; tool calls and outputs that do not pair up are
 * repaired (and counted, for a response header) instead of failing upstream.
 */
import { markReplayedReasoning } from '../../core/replay.js';
import type { ChatMessage, ChatRequest, JsonObject } from '../../core/types.js';
import type { ThinkingSigner } from '../thinking-signature.js';
import { isObj, ProtocolError, type Obj } from '../util.js';

export interface TranslatedResponses {
  chat: ChatRequest;
  /** The history without `instructions`, which a follow-up turn does not inherit. */
  history: ChatMessage[];
  /** Names of `custom` tools: their calls are unwrapped on the way back. */
  customTools: Set<string>;
  /** Orphan tool calls and outputs repaired. */
  repairs: number;
}

/** `{ "input": "<text>" }`: the one string argument a `custom` tool is wrapped in. */
export const CUSTOM_TOOL_PARAMETERS = {
  type: 'object',
  properties: { input: { type: 'string', description: 'The raw input for the tool, exactly as its format requires.' } },
  required: ['input'],
  additionalProperties: false,
};

export function translateResponsesRequest(
  body: Obj,
  previous: ChatMessage[],
  signer: ThinkingSigner,
): TranslatedResponses {
  const input = inputMessages(body.input, signer);
  const repaired = repairToolPairs([...previous, ...input.messages]);
  const messages: ChatMessage[] = [];
  if (typeof body.instructions === 'string' && body.instructions !== '')
    messages.push({ role: 'system', content: body.instructions });
  messages.push(...repaired.messages);

  const chat: ChatRequest = { model: String(body.model), messages };
  const customTools = new Set<string>();
  if (Array.isArray(body.tools) && body.tools.length > 0)
    chat.tools = body.tools.map((t, i) => tool(t, i, customTools));
  applyToolChoice(chat, body.tool_choice);
  if (typeof body.max_output_tokens === 'number') chat.max_tokens = body.max_output_tokens;
  for (const key of ['temperature', 'top_p', 'parallel_tool_calls', 'prompt_cache_key', 'user'] as const) {
    if (body[key] !== undefined && body[key] !== null) chat[key] = body[key];
  }
  if (isObj(body.reasoning) && typeof body.reasoning.effort === 'string') chat.reasoning_effort = body.reasoning.effort;
  const format = isObj(body.text) && isObj(body.text.format) ? body.text.format : null;
  if (format?.type === 'json_schema') {
    const { type: _type, ...schema } = format;
    chat.response_format = { type: 'json_schema', json_schema: schema };
  } else if (format?.type === 'json_object') {
    chat.response_format = { type: 'json_object' };
  }
  chat.stream = body.stream === true;
  if (chat.stream) chat.stream_options = { include_usage: true };
  if (messages.some((m) => m.reasoning_content !== undefined)) markReplayedReasoning(chat);
  return { chat, history: repaired.messages, customTools, repairs: repaired.repairs };
}

function inputMessages(input: unknown, signer: ThinkingSigner): { messages: ChatMessage[] } {
  if (typeof input === 'string') return { messages: [{ role: 'user', content: input }] };
  if (input === undefined || input === null) return { messages: [] };
  if (!Array.isArray(input)) throw new ProtocolError("'input' must be a string or an array of items");
  const messages: ChatMessage[] = [];
  /** The assistant message that following `function_call` items join. */
  let assistant: ChatMessage | null = null;
  let reasoning: string | undefined;
  const openAssistant = (content: string | null): ChatMessage => {
    const message: ChatMessage = { role: 'assistant', content };
    if (reasoning !== undefined) message.reasoning_content = reasoning;
    reasoning = undefined;
    messages.push(message);
    return message;
  };
  const addCall = (id: string, name: string, args: string): void => {
    assistant ??= openAssistant(null);
    const calls = (assistant.tool_calls ??= []) as JsonObject[];
    calls.push({ id, type: 'function', function: { name, arguments: args } });
  };
  for (const item of input) {
    if (!isObj(item)) continue;
    const type = item.type ?? (typeof item.role === 'string' ? 'message' : undefined);
    switch (type) {
      case 'message': {
        const role = item.role === 'developer' ? 'system' : String(item.role ?? 'user');
        if (role === 'assistant') {
          assistant = openAssistant(textOf(item.content));
          continue;
        }
        messages.push({ role, content: userContent(item.content) });
        break;
      }
      case 'function_call':
        addCall(
          String(item.call_id ?? item.id ?? ''),
          String(item.name ?? ''),
          typeof item.arguments === 'string' ? item.arguments : '{}',
        );
        continue;
      case 'custom_tool_call':
        addCall(
          String(item.call_id ?? item.id ?? ''),
          String(item.name ?? ''),
          JSON.stringify({ input: String(item.input ?? '') }),
        );
        continue;
      case 'function_call_output':
      case 'custom_tool_call_output':
        messages.push({ role: 'tool', tool_call_id: String(item.call_id ?? ''), content: textOf(item.output) });
        break;
      case 'reasoning': {
        const text = reasoningText(item, signer);
        if (text !== '') reasoning = (reasoning ?? '') + text;
        continue;
      }
      default:
        continue;
    }
    assistant = null;
  }
  return { messages };
}

/** Summary and content text; else what a FailProxy `encrypted_content` carries. Foreign blobs are dropped. */
function reasoningText(item: Obj, signer: ThinkingSigner): string {
  const parts = [
    ...(Array.isArray(item.summary) ? item.summary : []),
    ...(Array.isArray(item.content) ? item.content : []),
  ];
  const text = parts
    .filter((p): p is Obj => isObj(p) && typeof p.text === 'string')
    .map((p) => p.text as string)
    .join('\n');
  if (text !== '') return text;
  return signer.open(item.encrypted_content) ?? '';
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return content === undefined || content === null ? '' : JSON.stringify(content);
  return content
    .filter((p): p is Obj => isObj(p) && typeof p.text === 'string')
    .map((p) => p.text as string)
    .join('');
}

function userContent(content: unknown): unknown {
  if (!Array.isArray(content)) return textOf(content);
  const parts: JsonObject[] = [];
  for (const part of content) {
    if (!isObj(part)) continue;
    if (typeof part.text === 'string') parts.push({ type: 'text', text: part.text });
    else if (part.type === 'input_image' && typeof part.image_url === 'string') {
      parts.push({
        type: 'image_url',
        image_url: { url: part.image_url, ...(part.detail ? { detail: part.detail } : {}) },
      });
    }
  }
  return parts.every((p) => p.type === 'text') ? parts.map((p) => p.text as string).join('') : parts;
}

/**
 * Chat endpoints reject a `tool` message that answers no call, and a call
 * left without an answer: outputs without their call are dropped, calls
 * without their output get a stub answer.
 */
function repairToolPairs(messages: ChatMessage[]): { messages: ChatMessage[]; repairs: number } {
  const out: ChatMessage[] = [];
  let repairs = 0;
  let open: string[] = [];
  const closeOpen = (): void => {
    for (const id of open)
      out.push({ role: 'tool', tool_call_id: id, content: '(no output was recorded for this call)' });
    repairs += open.length;
    open = [];
  };
  for (const message of messages) {
    if (message.role === 'tool') {
      const at = open.indexOf(String(message.tool_call_id));
      if (at === -1) {
        repairs += 1;
        continue;
      }
      open.splice(at, 1);
      out.push(message);
      continue;
    }
    closeOpen();
    out.push(message);
    if (message.role === 'assistant' && Array.isArray(message.tool_calls)) {
      open = (message.tool_calls as Array<{ id: string }>).map((c) => c.id);
    }
  }
  closeOpen();
  return { messages: out, repairs };
}

const HOSTED = /^(web_search|file_search|computer_use|code_interpreter|image_generation|mcp|local_shell|tool_search)/;

function tool(raw: unknown, i: number, customTools: Set<string>): JsonObject {
  if (!isObj(raw)) throw new ProtocolError(`tools[${i}] must be an object`);
  const type = String(raw.type ?? '');
  if (type === 'function' && typeof raw.name === 'string') {
    const fn: JsonObject = {
      name: raw.name,
      parameters: isObj(raw.parameters) ? raw.parameters : { type: 'object', properties: {} },
    };
    if (typeof raw.description === 'string') fn.description = raw.description;
    if (typeof raw.strict === 'boolean') fn.strict = raw.strict;
    return { type: 'function', function: fn };
  }
  if (type === 'custom' && typeof raw.name === 'string') {
    customTools.add(raw.name);
    const description = typeof raw.description === 'string' ? raw.description : '';
    return { type: 'function', function: { name: raw.name, description, parameters: CUSTOM_TOOL_PARAMETERS } };
  }
  const what = HOSTED.test(type) ? `the hosted tool '${type}'` : `a tool of type '${type}'`;
  throw new ProtocolError(`tools[${i}] is ${what}, which chat endpoints cannot run; remove it from the request`);
}

function applyToolChoice(chat: ChatRequest, choice: unknown): void {
  if (typeof choice === 'string') chat.tool_choice = choice;
  else if (
    isObj(choice) &&
    (choice.type === 'function' || choice.type === 'custom') &&
    typeof choice.name === 'string'
  ) {
    chat.tool_choice = { type: 'function', function: { name: choice.name } };
  }
}
