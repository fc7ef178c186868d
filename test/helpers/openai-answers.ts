/**
 * One answer, written the way OpenAI writes it both as a `chat.completion`
 * and as a stream (WIRE §2–3, the API reference): `n > 1` choices whose
 * chunks interleave, `logprobs` per token, `refusal`, `annotations`,
 * `system_fingerprint` / `service_tier` / provider fields on every chunk,
 * `usage: null` on every chunk but the last, usage details. A fake upstream
 * serving it answers in whichever mode it is asked.
 */
import { json, sse, type Behaviour, type ReceivedRequest, type SseItem } from './fake-upstream.js';

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export interface AnswerChoice {
  /** Content, streamed one piece per chunk. */
  pieces?: string[];
  refusal?: string[];
  toolCalls?: Array<{ id: string; name: string; args: string[] }>;
  annotations?: unknown[];
  /** Message fields beyond the usual ones (`audio`, unknown), sent on the first delta. */
  extra?: Record<string, unknown>;
  logprobs?: boolean;
  finish: string;
}

export interface Answer {
  choices: AnswerChoice[];
  /** Top-level fields beside id/object/created/model/choices/usage. */
  top?: Record<string, unknown>;
  usage?: Record<string, unknown>;
}

export const IDENTITY = { id: 'chatcmpl-AyPOfid7ZkEj', created: 1738960000, model: 'gpt-4o-2024-08-06' };

/** What OpenAI reports per token: bytes, and its top alternatives. */
export function tokenLogprob(token: string, logprob = -0.25): TokenLogprob {
  const bytes = [...Buffer.from(token, 'utf8')];
  return { token, logprob, bytes, top_logprobs: [{ token, logprob, bytes }, { token: `${token}?`, logprob: logprob - 3, bytes: [...Buffer.from(`${token}?`)] }] };
}

export const OPENAI_EXTRAS = {
  system_fingerprint: 'fp_50cad350e4',
  service_tier: 'default',
  // Perplexity and OpenRouter add these.
  citations: ['https://en.wikipedia.org/wiki/Paris'],
  provider: 'OpenAI',
  x_vendor_trace: { region: 'eu-west', shard: 7 },
};

export const DETAILED_USAGE = {
  prompt_tokens: 19,
  completion_tokens: 10,
  total_tokens: 29,
  prompt_tokens_details: { cached_tokens: 8, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 2, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  cost: 0.000_42,
};

export function completionOf(answer: Answer): Record<string, unknown> {
  return {
    ...IDENTITY,
    object: 'chat.completion',
    choices: answer.choices.map((c, index) => ({
      index,
      message: {
        role: 'assistant',
        content: c.pieces ? c.pieces.join('') : null,
        refusal: c.refusal ? c.refusal.join('') : null,
        ...(c.annotations ? { annotations: c.annotations } : {}),
        ...(c.toolCalls
          ? { tool_calls: c.toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.args.join('') } })) }
          : {}),
        ...c.extra,
      },
      logprobs: c.logprobs ? { content: (c.pieces ?? []).map((p) => tokenLogprob(p)), refusal: null } : null,
      finish_reason: c.finish,
    })),
    usage: answer.usage ?? { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
    ...answer.top,
  };
}

/** The same answer as OpenAI streams it: one choice per chunk, choices interleaved. */
export function streamOf(answer: Answer): SseItem[] {
  const frame = (choices: unknown[], usage: unknown = null): SseItem => ({
    data: { ...IDENTITY, object: 'chat.completion.chunk', ...answer.top, choices, usage },
  });
  const perChoice = answer.choices.map((c, index) => {
    const lp = (content: TokenLogprob[]) => (c.logprobs ? { content, refusal: null } : null);
    const out: SseItem[] = [
      frame([{ index, delta: { role: 'assistant', content: '', refusal: null, ...c.extra }, logprobs: lp([]), finish_reason: null }]),
    ];
    for (const r of c.refusal ?? []) out.push(frame([{ index, delta: { refusal: r }, logprobs: null, finish_reason: null }]));
    for (const p of c.pieces ?? []) out.push(frame([{ index, delta: { content: p }, logprobs: lp([tokenLogprob(p)]), finish_reason: null }]));
    (c.toolCalls ?? []).forEach((t, i) => {
      out.push(frame([{ index, delta: { tool_calls: [{ index: i, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }] }, logprobs: null, finish_reason: null }]));
      for (const a of t.args) out.push(frame([{ index, delta: { tool_calls: [{ index: i, function: { arguments: a } }] }, logprobs: null, finish_reason: null }]));
    });
    if (c.annotations) out.push(frame([{ index, delta: { annotations: c.annotations }, logprobs: null, finish_reason: null }]));
    out.push(frame([{ index, delta: {}, logprobs: null, finish_reason: c.finish }]));
    return out;
  });
  const items: SseItem[] = [];
  for (let i = 0; perChoice.some((list) => i < list.length); i++) {
    for (const list of perChoice) if (i < list.length) items.push(list[i]!);
  }
  items.push(frame([], answer.usage ?? { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 }));
  return items;
}

/** A fake upstream behaviour: the answer streamed when asked to stream, else as one completion. */
export function answering(answer: Answer): (n: number, req: ReceivedRequest) => Behaviour {
  return (_n, req) => (req.body.stream === true ? sse(streamOf(answer)) : json(completionOf(answer)));
}
