/**
 * OpenAI wire types: only what the proxy touches; everything else passes
 * through (SPEC §3.12). Re-exported by `../types.ts`.
 */
export type JsonObject = Record<string, unknown>;

export interface ChatMessage {
  role: string;
  content?: unknown;
  [key: string]: unknown;
}

/** A client's chat request after repair and validation. Unknown fields are kept. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean; [key: string]: unknown } | null;
  [key: string]: unknown;
}

export interface ToolCallFunction {
  name?: string;
  arguments?: string;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: ToolCallFunction;
}

export interface Delta {
  role?: 'assistant';
  content?: string | null;
  reasoning_content?: string;
  tool_calls?: ToolCallDelta[];
  [key: string]: unknown;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

export interface ChunkChoice {
  index: number;
  delta: Delta;
  logprobs?: unknown;
  finish_reason: FinishReason | null;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  [key: string]: unknown;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: ChunkChoice[];
  usage?: Usage | null;
  [key: string]: unknown;
}

export interface AssistantMessage {
  role: 'assistant';
  content: string | null;
  reasoning_content?: string;
  tool_calls?: ToolCall[];
  refusal?: string | null;
  [key: string]: unknown;
}

export interface CompletionChoice {
  index: number;
  message: AssistantMessage;
  logprobs: unknown;
  finish_reason: FinishReason;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: Usage;
  [key: string]: unknown;
}
