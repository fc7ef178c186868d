/**
 * What a client application reads from an answer, whichever way it came:
 * through the `openai` SDK as a completion or as a stream of chunks, per
 * choice index. Built here, in the test, not by the proxy's own aggregator.
 */
import type OpenAI from 'openai';

/** The four ways an answer can travel: upstream streamed or not, client streaming or not. */
export const DIRECTIONS = [
  { key: 'ss', name: 'stream -> stream', upstream: true, client: true },
  { key: 'jj', name: 'JSON -> JSON', upstream: false, client: false },
  { key: 'js', name: 'JSON upstream -> stream client', upstream: false, client: true },
  { key: 'sj', name: 'stream upstream -> JSON client', upstream: true, client: false },
] as const;

export interface ChoiceView {
  index: number;
  content: string | null;
  refusal: string | null;
  logprobs: unknown[];
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  annotations: unknown[];
  /** Message / delta fields beside the ones above. */
  extra: Record<string, unknown>;
  finish: string | null;
}

export interface AnswerView {
  choices: ChoiceView[];
  /** Top-level fields beside id/object/created/model/choices/usage (of the completion, or of every chunk). */
  top: Array<Record<string, unknown>>;
  usage: Record<string, unknown> | null;
  /** Stream only: the chunks as the SDK yielded them. */
  chunks: OpenAI.ChatCompletionChunk[];
  /** The `x-failproxy-endpoint` response header. */
  endpoint: string | null;
}

const KNOWN_MESSAGE = new Set(['role', 'content', 'refusal', 'tool_calls', 'annotations']);
const KNOWN_TOP = new Set(['id', 'object', 'created', 'model', 'choices', 'usage']);

function topOf(o: object): Record<string, unknown> {
  const top: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!KNOWN_TOP.has(k)) top[k] = v;
  return top;
}

/** One request through the SDK, as a stream (with usage) or not. */
export async function ask(client: OpenAI, model: string, stream: boolean, extra: Record<string, unknown> = {}): Promise<AnswerView> {
  const base = { model, messages: [{ role: 'user' as const, content: 'What is the capital of France?' }], ...extra };
  if (!stream) {
    const { data, response } = await client.chat.completions.create({ ...base, stream: false }).withResponse();
    const choices = data.choices.map((c) => {
      const m = c.message as unknown as Record<string, unknown>;
      const extraFields: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(m)) if (!KNOWN_MESSAGE.has(k)) extraFields[k] = v;
      return {
        index: c.index,
        content: c.message.content,
        refusal: c.message.refusal ?? null,
        logprobs: c.logprobs?.content ?? [],
        toolCalls: (c.message.tool_calls ?? []).map((t) => {
          if (t.type !== 'function') throw new Error('not a function call');
          return { id: t.id, name: t.function.name, arguments: t.function.arguments };
        }),
        annotations: (m.annotations as unknown[] | undefined) ?? [],
        extra: extraFields,
        finish: c.finish_reason,
      };
    });
    return { choices, top: [topOf(data)], usage: (data.usage as unknown as Record<string, unknown>) ?? null, chunks: [], endpoint: response.headers.get('x-failproxy-endpoint') };
  }
  const { data: chunkStream, response } = await client.chat.completions
    .create({ ...base, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  const byIndex = new Map<number, ChoiceView>();
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  const top: Array<Record<string, unknown>> = [];
  let usage: Record<string, unknown> | null = null;
  for await (const chunk of chunkStream) {
    chunks.push(chunk);
    if (chunk.usage) usage = chunk.usage as unknown as Record<string, unknown>;
    if (chunk.choices.length > 0) top.push(topOf(chunk));
    for (const c of chunk.choices) {
      let v = byIndex.get(c.index);
      if (!v) {
        v = { index: c.index, content: null, refusal: null, logprobs: [], toolCalls: [], annotations: [], extra: {}, finish: null };
        byIndex.set(c.index, v);
      }
      const delta = c.delta as Record<string, unknown>;
      if (typeof delta.content === 'string' && delta.content !== '') v.content = (v.content ?? '') + delta.content;
      if (typeof delta.refusal === 'string') v.refusal = (v.refusal ?? '') + delta.refusal;
      if (Array.isArray(delta.annotations)) v.annotations.push(...(delta.annotations as unknown[]));
      for (const t of c.delta.tool_calls ?? []) {
        const call = (v.toolCalls[t.index] ??= { id: '', name: '', arguments: '' });
        if (t.id) call.id = t.id;
        if (t.function?.name) call.name = t.function.name;
        call.arguments += t.function?.arguments ?? '';
      }
      for (const [k, val] of Object.entries(delta)) if (!KNOWN_MESSAGE.has(k) && val !== null) v.extra[k] = val;
      if (c.logprobs?.content) v.logprobs.push(...c.logprobs.content);
      if (c.finish_reason) v.finish = c.finish_reason;
    }
  }
  const choices = [...byIndex.values()].sort((a, b) => a.index - b.index);
  return { choices, top, usage, chunks, endpoint: response.headers.get('x-failproxy-endpoint') };
}
