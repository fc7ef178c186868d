/**
 * A complete (non-streamed) upstream body -> the normalized `chat.completion`
 * (SPEC §3.6): reasoning from any form delivered per the group's mode, tool
 * calls with ids and string arguments, a non-null finish reason.
 */
import type { AssistantMessage, ChatCompletion, CompletionChoice, Failure, FinishReason, JsonObject, ToolCall, Usage } from '../types.js';
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
 * `error` payloads): every choice, in index order, and the top-level fields
 * it does not model as given. Returns null when no choice has a `message`.
 */
export function normalizeCompletion(raw: JsonObject, opts: NormalizeOptions): ChatCompletion | null {
  const rawChoices = raw.choices;
  if (!Array.isArray(rawChoices)) return null;
  const choices: CompletionChoice[] = [];
  let reasoningStripped = false;
  for (let i = 0; i < rawChoices.length; i++) {
    const choice: unknown = rawChoices[i];
    if (!isJsonObject(choice) || !isJsonObject(choice.message)) continue;
    const index = typeof choice.index === 'number' && Number.isInteger(choice.index) && choice.index >= 0 ? choice.index : i;
    const normalized = normalizeChoice(index, choice, choice.message, opts);
    if (normalized.strippedReasoning) reasoningStripped = true;
    choices.push(normalized.choice);
  }
  if (choices.length === 0) return null;
  if (choices.length > 1) choices.sort((a, b) => a.index - b.index);

  const completion: ChatCompletion = {
    id: typeof raw.id === 'string' && raw.id !== '' ? raw.id : opts.fallbackId,
    object: 'chat.completion',
    created:
      typeof raw.created === 'number' && Number.isFinite(raw.created) ? raw.created : opts.fallbackCreated,
    model: typeof raw.model === 'string' && raw.model !== '' ? raw.model : opts.fallbackModel,
    choices,
  };
  if (isJsonObject(raw.usage)) completion.usage = raw.usage as Usage;
  for (const key of Object.keys(raw)) {
    if (!NORMALIZED_COMPLETION_KEYS.has(key) && raw[key] !== undefined) completion[key] = raw[key];
  }
  if (reasoningStripped) strippedReasoning.add(completion);
  return completion;
}

/** Top-level fields the normalizer sets itself; any other (`system_fingerprint`, `citations`…) is kept. */
const NORMALIZED_COMPLETION_KEYS: ReadonlySet<string> = new Set(['id', 'object', 'created', 'model', 'choices', 'usage']);

function normalizeChoice(
  index: number,
  choice: JsonObject,
  msg: JsonObject,
  opts: NormalizeOptions,
): { choice: CompletionChoice; strippedReasoning: boolean } {
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
  return {
    choice: { index, message, logprobs: choice.logprobs ?? null, finish_reason: finish },
    strippedReasoning: opts.reasoning === 'strip' && reasoning !== '',
  };
}

/**
 * The completion is usable: a choice has content, tool calls or reasoning.
 * Reasoning dropped by `strip` mode in `normalizeCompletion` still counts.
 */
export function completionHasOutput(c: ChatCompletion): boolean {
  if (strippedReasoning.has(c)) return true;
  for (const choice of c.choices) {
    const message = choice.message;
    if (
      (typeof message.content === 'string' && message.content !== '') ||
      (message.tool_calls !== undefined && message.tool_calls.length > 0) ||
      (typeof message.reasoning_content === 'string' && message.reasoning_content !== '')
    ) {
      return true;
    }
  }
  return false;
}

/** No choice has output and one carries a `refusal`: the provider's deliberate answer (class `content_filter`). */
export function completionRefused(c: ChatCompletion): boolean {
  if (completionHasOutput(c)) return false;
  return c.choices.some((choice) => typeof choice.message.refusal === 'string' && choice.message.refusal !== '');
}

/** A refusal-only answer as a failure of class `content_filter` that carries the answer. */
export function refusalFailure(answer: ChatCompletion): Failure {
  const refusal = answer.choices.find((c) => typeof c.message.refusal === 'string' && c.message.refusal !== '')?.message.refusal;
  const text = typeof refusal === 'string' ? `: ${JSON.stringify(refusal.length > 120 ? `${refusal.slice(0, 120)}…` : refusal)}` : '';
  return { class: 'content_filter', message: `the provider refused to answer${text}`, answer };
}
