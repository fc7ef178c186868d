/**
 * Upstream scripts for the agent front doors (`/v1/messages`,
 * `/v1/responses`): answers with reasoning, fragmented tool calls, and the
 * ways they break. Built on the fake upstreams in fake-upstream.ts.
 */
import type { Group } from '../../src/core/types.js';
import {
  chunk,
  completionBody,
  json,
  sse,
  startFakeUpstream,
  usageChunk,
  type Behaviour,
  type SseItem,
} from './fake-upstream.js';
import { endpoint, group } from './groups.js';

/** Reasoning, then text, finished `stop`. */
export function thinkingThenText(reasoning: string[], text: string[]): SseItem[] {
  return [
    chunk({ role: 'assistant', content: '' }),
    ...reasoning.map((r) => chunk({ reasoning_content: r })),
    ...text.map((t) => chunk({ content: t })),
    chunk({}, 'stop'),
    usageChunk({ prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 }),
  ];
}

/**
 * Reasoning, then two tool calls whose arguments arrive in fragments; the
 * first call's later fragments carry no `index` (some upstreams omit it).
 */
export function fragmentedToolCalls(): SseItem[] {
  return [
    chunk({ role: 'assistant', reasoning_content: 'I should look both up.' }),
    chunk({
      tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } }],
    }),
    chunk({ tool_calls: [{ id: 'call_a', function: { arguments: '{"city":' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
    chunk({
      tool_calls: [
        { index: 1, id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{"tz":"CET"}' } },
      ],
    }),
    chunk({}, 'tool_calls'),
    usageChunk(),
  ];
}

/** A committed stream that breaks: some text, then a TCP reset and no finish. */
export function breaksAfterText(): Behaviour {
  return sse([chunk({ role: 'assistant', content: 'Half an' }), chunk({ content: ' answer' })], { end: 'reset' });
}

/** The same answer for streaming and non-streaming calls. */
export function answers(
  items: SseItem[],
  message: Record<string, unknown>,
  finish = 'stop',
): (n: number, req: { body: Record<string, unknown> }) => Behaviour {
  return (_n, req) =>
    req.body.stream === true
      ? sse(items)
      : json(
          completionBody((message.content as string | null | undefined) ?? null, { message, finish_reason: finish }),
        );
}

/** A 200 whose body is an error: a failure the proxy must see through. */
export const errorIn200: Behaviour = json({ error: { message: 'upstream overloaded', code: 500 } });

export const unavailable: Behaviour = json({ detail: "No instances available (yet) for chute_id='x'" }, 503);

export function rateLimited(seconds = 7): Behaviour {
  return json({ error: { message: 'Rate limit exceeded', code: 429 } }, 429, { 'retry-after': String(seconds) });
}

/** The upstreams both front doors' SDK tests fail over across, and the groups built on them. */
export interface FailoverUpstreams {
  /** 503, then 429 with `Retry-After: 7`, then a 200 carrying an error, then an answer with reasoning. */
  main: Group;
  /** 503, then fragmented tool calls. */
  tools: Group;
  /** Breaks after commit; resume off. */
  cut: Group;
  /** Every endpoint rate-limited. */
  limited: Group;
  close(): Promise<void>;
}

export async function startFailoverUpstreams(): Promise<FailoverUpstreams> {
  const down = await startFakeUpstream(unavailable);
  const limited = await startFakeUpstream(rateLimited(7));
  const broken200 = await startFakeUpstream(errorIn200);
  const thinker = await startFakeUpstream(
    answers(thinkingThenText(['Let me ', 'think.'], ['The answer', ' is 42.']), {
      content: 'The answer is 42.',
      reasoning_content: 'Let me think.',
    }),
  );
  const weatherCall = {
    id: 'call_a',
    type: 'function',
    function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
  };
  const tools = await startFakeUpstream(
    answers(fragmentedToolCalls(), { content: null, tool_calls: [weatherCall] }, 'tool_calls'),
  );
  const cut = await startFakeUpstream(breaksAfterText());
  return {
    main: group('main', [
      endpoint(down.baseurl, { name: 'down' }),
      endpoint(limited.baseurl, { name: 'limited' }),
      endpoint(broken200.baseurl, { name: 'broken200' }),
      endpoint(thinker.baseurl, { name: 'thinker' }),
    ]),
    tools: group('tools', [endpoint(down.baseurl, { name: 'down' }), endpoint(tools.baseurl, { name: 'tools' })]),
    cut: group('cut', [endpoint(cut.baseurl, { name: 'cut' })], { resume: false }),
    limited: group('limited', [
      endpoint(limited.baseurl, { name: 'limited-1' }),
      endpoint(limited.baseurl, { name: 'limited-2' }),
    ]),
    close: async () => {
      await Promise.all([down, limited, broken200, thinker, tools, cut].map((u) => u.close()));
    },
  };
}
