/**
 * A complete (non-streamed) upstream body -> the normalized `chat.completion`
 * (SPEC §3.6): reasoning from any form delivered per the group's mode, tool
 * calls with ids and string arguments, a non-null finish reason.
 */
import type { AssistantMessage, ChatCompletion, FinishReason, JsonObject, ToolCall, Usage } from '../types.js';
import { isJsonObject, toFinishReason, generateToolCallId, fieldReasoning, stringifyArguments, type NormalizeOptions } from './shared.js';
import { splitThinkText } from './think.js';

/** Message fields the normalizer rewrites; every other field is kept as is. */
const REWRITTEN_MESSAGE_KEYS: ReadonlySet<string> = new Set([
  'role',
  'content',
  'reasoning_content',
  'reasoning',
  'reasoning_details',
  'tool_calls',
]);

/** Completions whose reasoning was dropped by `strip` mode (they still had output). */
const strippedReasoning = new WeakSet<ChatCompletion>();

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  // Some servers answer with content parts.
  let text = '';
  for (const part of content) {
    if (isJsonObject(part) && typeof part.text === 'string') text += part.text;
  }
  return text;
}

/**
 * Normalizes a non-streaming upstream body (the caller has already rejected
 * `error` payloads). Returns null when there is no `choices[0].message`.
 */
export function normalizeCompletion(raw: JsonObject, opts: NormalizeOptions): ChatCompletion | null {
  const choices = raw.choices;
  if (!Array.isArray(choices)) return null;
  const choice: unknown = choices[0];
  if (!isJsonObject(choice)) return null;
  const msg = choice.message;
  if (!isJsonObject(msg)) return null;

  const split = splitThinkText(contentText(msg.content));
  const reasoning = fieldReasoning(msg) + split.reasoning;
  let content = split.content;

  const message: AssistantMessage = { role: 'assistant', content: null };
  for (const key of Object.keys(msg)) {
    if (!REWRITTEN_MESSAGE_KEYS.has(key)) message[key] = msg[key];
  }
  switch (opts.reasoning) {
    case 'field':
      if (reasoning !== '') message.reasoning_content = reasoning;
      if (Array.isArray(msg.reasoning_details)) message.reasoning_details = msg.reasoning_details;
      break;
    case 'tags':
      if (reasoning !== '') content = '<think>' + reasoning + '</think>\n\n' + content;
      break;
    case 'strip':
      break;
  }
  message.content = content === '' ? null : content;

  const toolCalls: ToolCall[] = [];
  if (Array.isArray(msg.tool_calls)) {
    for (const tc of msg.tool_calls) {
      if (!isJsonObject(tc) || !isJsonObject(tc.function)) continue;
      const fn = tc.function;
      toolCalls.push({
        id: typeof tc.id === 'string' && tc.id !== '' ? tc.id : generateToolCallId(),
        type: 'function',
        function: {
          name: typeof fn.name === 'string' ? fn.name : '',
          arguments: stringifyArguments(fn.arguments, '{}'),
        },
      });
    }
  }
  if (toolCalls.length > 0) message.tool_calls = toolCalls;

  const rawFinish = choice.finish_reason;
  let finish: FinishReason = typeof rawFinish === 'string' ? toFinishReason(rawFinish) : 'stop';
  if (finish === 'stop' && toolCalls.length > 0) finish = 'tool_calls';

  const completion: ChatCompletion = {
    id: typeof raw.id === 'string' && raw.id !== '' ? raw.id : opts.fallbackId,
    object: 'chat.completion',
    created:
      typeof raw.created === 'number' && Number.isFinite(raw.created) ? raw.created : opts.fallbackCreated,
    model: typeof raw.model === 'string' && raw.model !== '' ? raw.model : opts.fallbackModel,
    choices: [{ index: 0, message, logprobs: choice.logprobs ?? null, finish_reason: finish }],
  };
  if (isJsonObject(raw.usage)) completion.usage = raw.usage as Usage;
  if (opts.reasoning === 'strip' && reasoning !== '') strippedReasoning.add(completion);
  return completion;
}

/**
 * The completion is usable: it has content, tool calls or reasoning. Reasoning
 * dropped by `strip` mode in `normalizeCompletion` still counts.
 */
export function completionHasOutput(c: ChatCompletion): boolean {
  const message = c.choices[0]?.message;
  if (message === undefined) return false;
  return (
    (typeof message.content === 'string' && message.content !== '') ||
    (message.tool_calls !== undefined && message.tool_calls.length > 0) ||
    (typeof message.reasoning_content === 'string' && message.reasoning_content !== '') ||
    strippedReasoning.has(c)
  );
}
