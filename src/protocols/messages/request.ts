/**
 * An Anthropic Messages request as the engine's chat request. What Claude Code
 * sends: system blocks with `cache_control`, tools, thinking, `metadata`, and a
 * history where `tool_result` blocks answer the previous turn's `tool_use`.
 */
import { createHash } from 'node:crypto';
import { markReplayedReasoning } from '../../core/replay.js';
import type { ChatMessage, ChatRequest, JsonObject } from '../../core/types.js';
import type { ThinkingSigner } from '../thinking-signature.js';
import { isObj, ProtocolError, type Obj } from '../util.js';

/** OpenAI-compatible upstreams reject longer function names. */
const MAX_TOOL_NAME = 64;

/** Tool names as sent upstream → the client's, for names that had to be shortened. */
export type ToolNames = Map<string, string>;

export interface TranslatedMessages {
  chat: ChatRequest;
  toolNames: ToolNames;
}

export function translateMessagesRequest(body: Obj, signer: ThinkingSigner): TranslatedMessages {
  const toolNames: ToolNames = new Map();
  const upstreamName = (name: string): string => {
    if (name.length <= MAX_TOOL_NAME) return name;
    const short = `${name.slice(0, MAX_TOOL_NAME - 9)}_${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
    toolNames.set(short, name);
    return short;
  };

  if (!Array.isArray(body.messages)) throw new ProtocolError("'messages' must be an array");
  const messages: ChatMessage[] = [];
  const system = systemText(body.system);
  if (system) messages.push({ role: 'system', content: system });
  let replayed = false;
  body.messages.forEach((raw, i) => {
    if (!isObj(raw) || (raw.role !== 'user' && raw.role !== 'assistant')) {
      throw new ProtocolError(`messages[${i}] must be an object with role "user" or "assistant"`);
    }
    if (raw.role === 'assistant') {
      const message = assistantMessage(raw.content, upstreamName, signer);
      if (message.reasoning_content !== undefined) replayed = true;
      messages.push(message);
    } else {
      messages.push(...userMessages(raw.content));
    }
  });

  const chat: ChatRequest = { model: String(body.model), messages };
  if (typeof body.max_tokens === 'number') chat.max_tokens = body.max_tokens;
  for (const key of ['temperature', 'top_p'] as const) if (typeof body[key] === 'number') chat[key] = body[key];
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length > 0) chat.stop = body.stop_sequences;
  if (Array.isArray(body.tools) && body.tools.length > 0)
    chat.tools = body.tools.map((t, i) => tool(t, i, upstreamName));
  applyToolChoice(chat, body.tool_choice, upstreamName);
  const effort = reasoningEffort(body.thinking);
  if (effort) chat.reasoning_effort = effort;
  chat.stream = body.stream === true;
  if (chat.stream) chat.stream_options = { include_usage: true };
  if (replayed) markReplayedReasoning(chat);
  return { chat, toolNames };
}

function systemText(system: unknown): string {
  if (typeof system === 'string') return system;
  if (!Array.isArray(system)) return '';
  return system
    .filter((b): b is Obj => isObj(b) && b.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text as string)
    .join('\n\n');
}

function blocksOf(content: unknown): Obj[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content) ? content.filter(isObj) : [];
}

/**
 * `tool_result` blocks become `tool` messages first — they must follow the
 * assistant turn that called them — then the user's own text and images.
 * Images inside a tool result follow as a user message of their own.
 */
function userMessages(content: unknown): ChatMessage[] {
  const tools: ChatMessage[] = [];
  const parts: JsonObject[] = [];
  const toolImages: JsonObject[] = [];
  for (const block of blocksOf(content)) {
    if (block.type === 'tool_result') {
      const inner = blocksOf(block.content);
      let text = inner
        .filter((b) => b.type === 'text' && typeof b.text === 'string')
        .map((b) => b.text as string)
        .join('\n');
      for (const b of inner) {
        const image = imagePart(b);
        if (image) toolImages.push(image);
      }
      if (block.is_error === true) text = `Error: ${text}`;
      tools.push({ role: 'tool', tool_call_id: String(block.tool_use_id ?? ''), content: text });
      continue;
    }
    if (block.type === 'text' && typeof block.text === 'string') parts.push({ type: 'text', text: block.text });
    const image = imagePart(block);
    if (image) parts.push(image);
  }
  const out = [...tools];
  if (toolImages.length > 0) out.push({ role: 'user', content: toolImages });
  if (parts.length > 0) {
    const onlyText = parts.every((p) => p.type === 'text');
    out.push({ role: 'user', content: onlyText ? parts.map((p) => p.text as string).join('\n') : parts });
  }
  return out;
}

function imagePart(block: Obj): JsonObject | null {
  if (block.type !== 'image' || !isObj(block.source)) return null;
  const source = block.source;
  if (source.type === 'base64')
    return { type: 'image_url', image_url: { url: `data:${String(source.media_type)};base64,${String(source.data)}` } };
  if (source.type === 'url') return { type: 'image_url', image_url: { url: String(source.url) } };
  return null;
}

/**
 * Thinking comes back as `reasoning_content` only when its signature is one
 * FailProxy wrote; foreign (another provider's) or missing signatures are
 * dropped, never an error.
 */
function assistantMessage(content: unknown, upstreamName: (n: string) => string, signer: ThinkingSigner): ChatMessage {
  let text = '';
  let reasoning: string | undefined;
  const toolCalls: JsonObject[] = [];
  for (const block of blocksOf(content)) {
    if (block.type === 'text' && typeof block.text === 'string') text += block.text;
    else if (block.type === 'thinking') {
      // What the signature carries is what the upstream really produced; the
      // visible text is only a fallback for reasoning too long to carry.
      const carried = signer.open(block.signature);
      if (carried === null) continue;
      const text = carried !== '' ? carried : typeof block.thinking === 'string' ? block.thinking : '';
      reasoning = (reasoning ?? '') + text;
    } else if (block.type === 'tool_use') {
      toolCalls.push({
        id: String(block.id ?? ''),
        type: 'function',
        function: { name: upstreamName(String(block.name ?? '')), arguments: JSON.stringify(block.input ?? {}) },
      });
    }
  }
  const message: ChatMessage = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  if (reasoning !== undefined) message.reasoning_content = reasoning;
  return message;
}

function tool(raw: unknown, i: number, upstreamName: (n: string) => string): JsonObject {
  if (!isObj(raw) || typeof raw.name !== 'string')
    throw new ProtocolError(`tools[${i}] must be an object with a 'name'`);
  if (raw.type !== undefined && raw.type !== 'custom' && raw.input_schema === undefined) {
    throw new ProtocolError(
      `tools[${i}] '${raw.name}' is a server tool (type ${String(raw.type)}), which chat endpoints cannot run`,
    );
  }
  const fn: JsonObject = {
    name: upstreamName(raw.name),
    parameters: isObj(raw.input_schema) ? raw.input_schema : { type: 'object' },
  };
  if (typeof raw.description === 'string') fn.description = raw.description;
  return { type: 'function', function: fn };
}

function applyToolChoice(chat: ChatRequest, choice: unknown, upstreamName: (n: string) => string): void {
  if (!isObj(choice)) return;
  if (choice.type === 'auto') chat.tool_choice = 'auto';
  else if (choice.type === 'any') chat.tool_choice = 'required';
  else if (choice.type === 'none') chat.tool_choice = 'none';
  else if (choice.type === 'tool' && typeof choice.name === 'string') {
    chat.tool_choice = { type: 'function', function: { name: upstreamName(choice.name) } };
  }
  if (choice.disable_parallel_tool_use === true) chat.parallel_tool_calls = false;
}

function reasoningEffort(thinking: unknown): string | undefined {
  if (!isObj(thinking) || thinking.type !== 'enabled') return undefined;
  const budget = typeof thinking.budget_tokens === 'number' ? thinking.budget_tokens : 0;
  return budget >= 16_000 ? 'high' : budget >= 4_000 ? 'medium' : 'low';
}
