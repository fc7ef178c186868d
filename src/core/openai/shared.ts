/**
 * What the stream normalizer and the completion normalizer share: their
 * options, finish reasons, tool-call ids, and reading reasoning and
 * arguments from any upstream form.
 */
import { randomBytes } from 'node:crypto';
import type { FinishReason, JsonObject, ReasoningMode } from '../types.js';

export interface NormalizeOptions {
  reasoning: ReasoningMode;
  /** The endpoint's template opens `<think>` in the prompt (streamed content starts inside it). */
  thinkOpen: boolean;
  /** The client asked for `stream_options.include_usage`. */
  includeUsage: boolean;
  fallbackId: string;
  fallbackCreated: number;
  /** The endpoint's configured model, used when the upstream reports none. */
  fallbackModel: string;
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const FINISH_REASONS: ReadonlySet<string> = new Set([
  'stop',
  'length',
  'tool_calls',
  'content_filter',
  'function_call',
]);

/** Unknown upstream values (`eos`, `end_turn`, OpenRouter's `error`…) become `stop`. */
export function toFinishReason(value: string): FinishReason {
  return FINISH_REASONS.has(value) ? (value as FinishReason) : 'stop';
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `call_` + 24 random alphanumerics, for upstreams that send tool calls without ids. */
export function generateToolCallId(): string {
  const bytes = randomBytes(24);
  let id = 'call_';
  for (const b of bytes) id += ID_ALPHABET.charAt(b % 62);
  return id;
}

/** Text of OpenRouter `reasoning_details` items (`reasoning.encrypted` has none). */
function detailsText(details: unknown[]): string {
  let text = '';
  for (const d of details) {
    if (!isJsonObject(d)) continue;
    if (d.type === 'reasoning.text' && typeof d.text === 'string') text += d.text;
    else if (d.type === 'reasoning.summary' && typeof d.summary === 'string') text += d.summary;
  }
  return text;
}

/**
 * Reasoning text carried in fields (DeepSeek `reasoning_content`, OpenRouter and
 * new vLLM `reasoning`, else `reasoning_details` texts). Upstreams that mirror
 * the same text in several fields are read once.
 */
export function fieldReasoning(o: JsonObject): string {
  const rc = o.reasoning_content;
  if (typeof rc === 'string' && rc !== '') return rc;
  const r = o.reasoning;
  if (typeof r === 'string' && r !== '') return r;
  const details = o.reasoning_details;
  return Array.isArray(details) ? detailsText(details) : '';
}

export function stringifyArguments(args: unknown, missing: string): string {
  if (typeof args === 'string') return args;
  if (args === undefined || args === null) return missing;
  return JSON.stringify(args);
}
