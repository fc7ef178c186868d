/** Anthropic's answer vocabulary: stop reasons, usage, errors, and the non-streaming `message`. */
import type { ChatCompletion, FinishReason, Usage } from '../../core/types.js';
import type { ThinkingSigner } from '../thinking-signature.js';
import { newId, parseArguments, type Obj } from '../util.js';
import type { ToolNames } from './request.js';

export function stopReason(finish: FinishReason | null | undefined): string {
  switch (finish) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return 'end_turn';
  }
}

/** Anthropic counts cache reads apart from `input_tokens`. */
export function messagesUsage(usage: Usage | null | undefined, estimatedInput: number): Obj {
  if (!usage) return { input_tokens: estimatedInput, output_tokens: 0 };
  const details = usage.prompt_tokens_details as { cached_tokens?: number } | undefined;
  const cached = typeof details?.cached_tokens === 'number' ? details.cached_tokens : 0;
  return {
    input_tokens: Math.max(0, usage.prompt_tokens - cached),
    output_tokens: usage.completion_tokens,
    cache_read_input_tokens: cached,
  };
}

export function errorType(status: number): string {
  if (status === 400 || status === 422) return 'invalid_request_error';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503 || status === 529) return 'overloaded_error';
  return 'api_error';
}

export function errorBody(status: number, message: string): Obj {
  return { type: 'error', error: { type: errorType(status), message } };
}

export function clientToolName(names: ToolNames, name: string): string {
  return names.get(name) ?? name;
}

export function toMessage(
  completion: ChatCompletion,
  toolNames: ToolNames,
  signer: ThinkingSigner,
  estimatedInput: number,
): Obj {
  const message = completion.choices[0]?.message;
  const content: Obj[] = [];
  const reasoning = message?.reasoning_content;
  if (typeof reasoning === 'string' && reasoning !== '') {
    content.push({ type: 'thinking', thinking: reasoning, signature: signer.sign(reasoning) });
  }
  if (typeof message?.content === 'string' && message.content !== '')
    content.push({ type: 'text', text: message.content });
  for (const call of message?.tool_calls ?? []) {
    content.push({
      type: 'tool_use',
      id: call.id,
      name: clientToolName(toolNames, call.function.name),
      input: parseArguments(call.function.arguments),
    });
  }
  return {
    id: newId('msg_'),
    type: 'message',
    role: 'assistant',
    model: completion.model,
    content,
    stop_reason: stopReason(completion.choices[0]?.finish_reason),
    stop_sequence: null,
    usage: messagesUsage(completion.usage, estimatedInput),
  };
}
