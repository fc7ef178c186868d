/** The Responses API's answer vocabulary: output items, usage, the `response` object. */
import type { ChatMessage, FinishReason, Usage } from '../../core/types.js';
import type { ThinkingSigner } from '../thinking-signature.js';
import { isObj, type Obj } from '../util.js';

/** What one answer produced, whichever way it arrived (stream or one completion). */
export interface AnswerParts {
  reasoning: string;
  text: string;
  calls: Array<{ id: string; name: string; args: string }>;
}

/** Per request: what the client asked that shapes every `response` object. */
export interface ResponseFrame {
  id: string;
  createdAt: number;
  request: Obj;
  customTools: Set<string>;
  /** The client asked for `reasoning.encrypted_content`. */
  encryptedReasoning: boolean;
  signer: ThinkingSigner;
}

export function reasoningItem(frame: ResponseFrame, id: string, text: string): Obj {
  const item: Obj = { type: 'reasoning', id, summary: text === '' ? [] : [{ type: 'summary_text', text }] };
  if (frame.encryptedReasoning) item.encrypted_content = frame.signer.sign(text);
  return item;
}

export function messageItem(id: string, text: string, status: 'in_progress' | 'completed'): Obj {
  const content = status === 'completed' ? [outputText(text)] : [];
  return { type: 'message', id, status, role: 'assistant', content };
}

export function outputText(text: string): Obj {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

/** A call of a `custom` tool carries `{ "input": "..." }`; the client gets the bare input back. */
export function callItem(
  frame: ResponseFrame,
  id: string,
  callId: string,
  name: string,
  args: string,
  done: boolean,
): Obj {
  const status = done ? 'completed' : 'in_progress';
  if (frame.customTools.has(name)) {
    return { type: 'custom_tool_call', id, call_id: callId, name, input: done ? customInput(args) : '', status };
  }
  return { type: 'function_call', id, call_id: callId, name, arguments: done ? args : '', status };
}

export function customInput(args: string): string {
  try {
    const value: unknown = JSON.parse(args);
    if (isObj(value) && typeof value.input === 'string') return value.input;
  } catch {
    // A model that ignored the wrapper sent the raw input.
  }
  return args;
}

export function responsesUsage(usage: Usage | null | undefined): Obj | null {
  if (!usage) return null;
  const cached = (usage.prompt_tokens_details as { cached_tokens?: number } | undefined)?.cached_tokens ?? 0;
  const reasoning =
    (usage.completion_tokens_details as { reasoning_tokens?: number } | undefined)?.reasoning_tokens ?? 0;
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: reasoning },
    total_tokens: usage.total_tokens,
  };
}

export type Terminal =
  | { status: 'completed' }
  | { status: 'incomplete'; reason: string }
  | { status: 'failed'; code: string; message: string };

export function terminalOf(finish: FinishReason): Terminal {
  if (finish === 'length') return { status: 'incomplete', reason: 'max_output_tokens' };
  if (finish === 'content_filter') return { status: 'incomplete', reason: 'content_filter' };
  return { status: 'completed' };
}

/** The `response` object every lifecycle event and the non-streaming answer carry. */
export function responseObject(
  frame: ResponseFrame,
  model: string,
  status: string,
  output: Obj[],
  extra: Obj = {},
): Obj {
  const r = frame.request;
  return {
    id: frame.id,
    object: 'response',
    created_at: frame.createdAt,
    status,
    error: null,
    incomplete_details: null,
    instructions: r.instructions ?? null,
    max_output_tokens: r.max_output_tokens ?? null,
    model,
    output,
    parallel_tool_calls: r.parallel_tool_calls ?? true,
    previous_response_id: r.previous_response_id ?? null,
    reasoning: r.reasoning ?? null,
    store: r.store ?? true,
    temperature: r.temperature ?? null,
    text: r.text ?? { format: { type: 'text' } },
    tool_choice: r.tool_choice ?? 'auto',
    tools: r.tools ?? [],
    top_p: r.top_p ?? null,
    truncation: 'disabled',
    usage: null,
    metadata: r.metadata ?? {},
    ...extra,
  };
}

export function terminalFields(terminal: Terminal, usage: Obj | null): Obj {
  if (terminal.status === 'incomplete') return { usage, incomplete_details: { reason: terminal.reason } };
  if (terminal.status === 'failed') return { usage, error: { code: terminal.code, message: terminal.message } };
  return { usage };
}

/** The assistant turn as the engine's history keeps it (for `previous_response_id`). */
export function assistantHistory(parts: AnswerParts): ChatMessage {
  const message: ChatMessage = {
    role: 'assistant',
    content: parts.text === '' && parts.calls.length > 0 ? null : parts.text,
  };
  if (parts.calls.length > 0) {
    message.tool_calls = parts.calls.map((c) => ({
      id: c.id,
      type: 'function',
      function: { name: c.name, arguments: c.args },
    }));
  }
  if (parts.reasoning !== '') message.reasoning_content = parts.reasoning;
  return message;
}
