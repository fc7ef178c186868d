/**
 * Stream <-> completion conversion (SPEC §3.5, WIRE §8). Both directions work
 * on normalized shapes, every choice of `n > 1`, and `aggregate(explode(c))`
 * gives back `c`: message fields the stream has no slot for (e.g. `refusal`,
 * `annotations`) ride on the first delta of their choice, `logprobs` too,
 * `usage` on the `choices: []` chunk, top-level fields on every chunk.
 */
import type {
  AssistantMessage,
  ChatCompletion,
  ChatCompletionChunk,
  ChunkChoice,
  CompletionChoice,
  Delta,
  FinishReason,
  JsonObject,
  ToolCall,
  Usage,
} from '../types.js';
import { generateToolCallId, isJsonObject, isNormalizedChunkKey } from './normalize.js';

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

/** One choice being accumulated: text appended, tool calls by index, other delta fields kept. */
class ChoiceAccumulator {
  content = '';
  reasoning = '';
  details: unknown[] | null = null;
  refusal: string | null | undefined;
  annotations: unknown[] | null = null;
  extras: JsonObject | null = null;
  readonly tools = new Map<number, ToolAccumulator>();
  finish: FinishReason | null = null;
  logprobs: unknown = null;

  constructor(readonly index: number) {}

  add(choice: ChunkChoice): void {
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
        case 'annotations':
          // Citations arrive one or a few per delta; the message lists them all.
          if (Array.isArray(value)) {
            if (this.annotations === null) this.annotations = value.slice();
            else for (const a of value) this.annotations.push(a);
          } else {
            (this.extras ??= {})[key] = value;
          }
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
    if (prev === null) {
      this.logprobs = isJsonObject(lp) ? { ...lp } : lp;
      return;
    }
    if (!isJsonObject(prev) || !isJsonObject(lp)) return;
    // Token lists (`content`, `refusal`) are appended; a null list says nothing new.
    for (const key in lp) {
      const a = prev[key];
      const b = lp[key];
      if (Array.isArray(a) && Array.isArray(b)) prev[key] = a.concat(b);
      else if (b !== null || a === undefined) prev[key] = b;
    }
  }

  result(): CompletionChoice {
    const message: AssistantMessage = {
      ...this.extras,
      role: 'assistant',
      content: this.content === '' ? null : this.content,
    };
    if (this.refusal !== undefined) message.refusal = this.refusal;
    if (this.annotations !== null) message.annotations = this.annotations;
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
    return {
      index: this.index,
      message,
      logprobs: this.logprobs,
      finish_reason: this.finish ?? (this.tools.size > 0 ? 'tool_calls' : 'stop'),
    };
  }
}

/**
 * Accumulates normalized chunks into one `chat.completion`, as openai-node's
 * `ChatCompletionStream` does: per choice index, text appended, tool calls by
 * index with arguments appended and id/name set once, `reasoning_details`
 * and `annotations` concatenated, other delta fields kept; the chunks'
 * top-level fields (`system_fingerprint`…) go on the completion.
 */
export class CompletionAggregator {
  private identity: CompletionIdentity | undefined;
  private first: ChoiceAccumulator | null = null;
  private others: Map<number, ChoiceAccumulator> | null = null;
  private extras: JsonObject | null = null;
  private usage: Usage | undefined;

  /** `fallback` names the completion when no chunk arrives. */
  constructor(private readonly fallback?: CompletionIdentity) {}

  add(chunk: ChatCompletionChunk): void {
    this.identity ??= { id: chunk.id, created: chunk.created, model: chunk.model };
    if (isJsonObject(chunk.usage)) this.usage = chunk.usage;
    for (const key in chunk) {
      if (!isNormalizedChunkKey(key) && chunk[key] !== undefined) (this.extras ??= {})[key] = chunk[key];
    }
    for (const choice of chunk.choices) this.choice(choice.index).add(choice);
  }

  private choice(index: number): ChoiceAccumulator {
    if (index === 0) return (this.first ??= new ChoiceAccumulator(0));
    const others = (this.others ??= new Map());
    let acc = others.get(index);
    if (acc === undefined) {
      acc = new ChoiceAccumulator(index);
      others.set(index, acc);
    }
    return acc;
  }

  /** The completion so far, choices in index order; `finish_reason` is never null (`stop`, or `tool_calls` after calls). */
  result(): ChatCompletion {
    const identity = this.identity ?? this.fallback ?? { id: '', created: 0, model: '' };
    const accumulators = this.others === null ? [] : [...this.others.values()];
    // A stream without any choice still answers with one (empty) choice 0.
    if (this.first !== null || accumulators.length === 0) accumulators.push(this.first ?? new ChoiceAccumulator(0));
    accumulators.sort((a, b) => a.index - b.index);
    const completion: ChatCompletion = {
      id: identity.id,
      object: 'chat.completion',
      created: identity.created,
      model: identity.model,
      choices: accumulators.map((acc) => acc.result()),
    };
    if (this.usage !== undefined) completion.usage = this.usage;
    if (this.extras !== null) Object.assign(completion, this.extras);
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
 * Replays a normalized completion as chunks (WIRE §8), choice after choice:
 * role (with the message fields the stream has no slot for, and the choice's
 * `logprobs`), reasoning, content, one delta per tool call, finish; then
 * usage when the client asked. The completion's top-level fields it does not
 * model ride on every chunk, as OpenAI sends `system_fingerprint`.
 */
export function explodeCompletion(
  c: ChatCompletion,
  opts: { includeUsage: boolean },
): ChatCompletionChunk[] {
  const { id, created, model } = c;
  const chunks: ChatCompletionChunk[] = [];
  let extras: JsonObject | null = null;
  for (const key in c) {
    if (!isNormalizedChunkKey(key) && c[key] !== undefined) (extras ??= {})[key] = c[key];
  }
  const emit = (choices: ChunkChoice[], usage?: Usage): void => {
    const chunk: ChatCompletionChunk = { id, object: 'chat.completion.chunk', created, model, choices };
    if (usage !== undefined) chunk.usage = usage;
    if (extras !== null) Object.assign(chunk, extras);
    chunks.push(chunk);
  };
  for (const choice of c.choices) {
    const index = choice.index;
    const push = (delta: Delta, finish: FinishReason | null = null, logprobs: unknown = null): void =>
      emit([{ index, delta, logprobs, finish_reason: finish }]);
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
  if (opts.includeUsage && c.usage !== undefined) emit([], c.usage);
  return chunks;
}
