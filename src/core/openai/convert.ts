/**
 * Stream <-> completion conversion (SPEC §3.5, WIRE §8). Both directions work
 * on normalized shapes, and `aggregate(explode(c))` gives back `c`: message
 * fields the stream has no slot for (e.g. `refusal`) ride on the first delta,
 * `logprobs` on the first choice, `usage` on the `choices: []` chunk.
 */
import type {
  AssistantMessage,
  ChatCompletion,
  ChatCompletionChunk,
  ChunkChoice,
  Delta,
  FinishReason,
  JsonObject,
  ToolCall,
  Usage,
} from '../types.js';
import { generateToolCallId, isJsonObject } from './normalize.js';

interface ToolAccumulator {
  id: string | undefined;
  name: string | undefined;
  arguments: string;
}

export interface CompletionIdentity {
  id: string;
  created: number;
  model: string;
}

/**
 * Accumulates normalized chunks into one `chat.completion`, as openai-node's
 * `ChatCompletionStream` does: text appended, tool calls by index with
 * arguments appended and id/name set once, `reasoning_details` concatenated.
 */
export class CompletionAggregator {
  private identity: CompletionIdentity | undefined;
  private content = '';
  private reasoning = '';
  private details: unknown[] | null = null;
  private refusal: string | null | undefined;
  private extras: JsonObject | null = null;
  private readonly tools = new Map<number, ToolAccumulator>();
  private finish: FinishReason | null = null;
  private logprobs: unknown = null;
  private usage: Usage | undefined;

  /** `fallback` names the completion when no chunk arrives. */
  constructor(private readonly fallback?: CompletionIdentity) {}

  add(chunk: ChatCompletionChunk): void {
    this.identity ??= { id: chunk.id, created: chunk.created, model: chunk.model };
    if (isJsonObject(chunk.usage)) this.usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.index === 0) this.addChoice(choice);
    }
  }

  private addChoice(choice: ChunkChoice): void {
    if (choice.logprobs !== undefined && choice.logprobs !== null) this.addLogprobs(choice.logprobs);
    if (choice.finish_reason !== null) this.finish = choice.finish_reason;
    const delta: Delta = choice.delta;
    for (const key of Object.keys(delta)) {
      const value = delta[key];
      switch (key) {
        case 'role':
          break;
        case 'content':
          if (typeof value === 'string') this.content += value;
          break;
        case 'reasoning_content':
          if (typeof value === 'string') this.reasoning += value;
          break;
        case 'reasoning_details':
          if (Array.isArray(value)) {
            if (this.details === null) this.details = value.slice();
            else for (const d of value) this.details.push(d);
          }
          break;
        case 'refusal':
          if (typeof value === 'string') this.refusal = (this.refusal ?? '') + value;
          else if (value === null && this.refusal === undefined) this.refusal = null;
          break;
        case 'tool_calls':
          if (Array.isArray(value)) for (const tc of value) this.addToolCall(tc);
          break;
        default:
          (this.extras ??= {})[key] = value;
      }
    }
  }

  private addToolCall(tc: unknown): void {
    if (!isJsonObject(tc) || typeof tc.index !== 'number') return;
    let acc = this.tools.get(tc.index);
    if (acc === undefined) {
      acc = { id: undefined, name: undefined, arguments: '' };
      this.tools.set(tc.index, acc);
    }
    if (acc.id === undefined && typeof tc.id === 'string' && tc.id !== '') acc.id = tc.id;
    const fn = tc.function;
    if (isJsonObject(fn)) {
      if (acc.name === undefined && typeof fn.name === 'string') acc.name = fn.name;
      if (typeof fn.arguments === 'string') acc.arguments += fn.arguments;
    }
  }

  private addLogprobs(lp: unknown): void {
    const prev = this.logprobs;
    if (isJsonObject(prev) && isJsonObject(lp) && Array.isArray(prev.content) && Array.isArray(lp.content)) {
      prev.content = prev.content.concat(lp.content);
    } else if (prev === null) {
      this.logprobs = isJsonObject(lp) && Array.isArray(lp.content) ? { ...lp } : lp;
    }
  }

  /** The completion so far; `finish_reason` is never null (`stop`, or `tool_calls` after calls). */
  result(): ChatCompletion {
    const identity = this.identity ?? this.fallback ?? { id: '', created: 0, model: '' };
    const message: AssistantMessage = {
      ...this.extras,
      role: 'assistant',
      content: this.content === '' ? null : this.content,
    };
    if (this.refusal !== undefined) message.refusal = this.refusal;
    if (this.reasoning !== '') message.reasoning_content = this.reasoning;
    if (this.details !== null) message.reasoning_details = this.details;
    if (this.tools.size > 0) {
      const indices = [...this.tools.keys()].sort((a, b) => a - b);
      const calls: ToolCall[] = [];
      for (const i of indices) {
        const acc = this.tools.get(i);
        if (acc === undefined) continue;
        acc.id ??= generateToolCallId();
        calls.push({
          id: acc.id,
          type: 'function',
          function: { name: acc.name ?? '', arguments: acc.arguments },
        });
      }
      message.tool_calls = calls;
    }
    const completion: ChatCompletion = {
      id: identity.id,
      object: 'chat.completion',
      created: identity.created,
      model: identity.model,
      choices: [
        {
          index: 0,
          message,
          logprobs: this.logprobs,
          finish_reason: this.finish ?? (this.tools.size > 0 ? 'tool_calls' : 'stop'),
        },
      ],
    };
    if (this.usage !== undefined) completion.usage = this.usage;
    return completion;
  }
}

/** Message fields that get their own chunks; the rest ride on the first delta. */
const EXPLODED_KEYS: ReadonlySet<string> = new Set([
  'role',
  'content',
  'reasoning_content',
  'reasoning_details',
  'tool_calls',
]);

/**
 * Replays a normalized completion as chunks (WIRE §8): role, reasoning,
 * content, one delta per tool call, finish, then usage when the client asked.
 */
export function explodeCompletion(
  c: ChatCompletion,
  opts: { includeUsage: boolean },
): ChatCompletionChunk[] {
  const { id, created, model } = c;
  const chunks: ChatCompletionChunk[] = [];
  const push = (delta: Delta, finish: FinishReason | null = null, logprobs: unknown = null): void => {
    chunks.push({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, logprobs, finish_reason: finish }],
    });
  };
  const choice = c.choices[0];
  if (choice !== undefined) {
    const m = choice.message;
    const first: Delta = { role: 'assistant', content: '' };
    for (const key of Object.keys(m)) {
      if (!EXPLODED_KEYS.has(key)) first[key] = m[key];
    }
    push(first, null, choice.logprobs ?? null);

    const reasoning = m.reasoning_content;
    const details = m.reasoning_details;
    if ((typeof reasoning === 'string' && reasoning !== '') || Array.isArray(details)) {
      const delta: Delta = {};
      if (typeof reasoning === 'string' && reasoning !== '') delta.reasoning_content = reasoning;
      if (Array.isArray(details)) delta.reasoning_details = details;
      push(delta);
    }
    if (typeof m.content === 'string' && m.content !== '') push({ content: m.content });
    const calls = m.tool_calls ?? [];
    for (let i = 0; i < calls.length; i++) {
      const tc = calls[i];
      if (tc === undefined) continue;
      push({
        tool_calls: [
          {
            index: i,
            id: tc.id,
            type: 'function',
            function: { name: tc.function.name, arguments: tc.function.arguments },
          },
        ],
      });
    }
    push({}, choice.finish_reason);
  }
  if (opts.includeUsage && c.usage !== undefined) {
    chunks.push({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: c.usage });
  }
  return chunks;
}
