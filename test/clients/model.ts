/**
 * A fake model that answers the way a real OpenAI-compatible server does, for
 * the client-library tests: reasoning (`reasoning_content`) and text, usage
 * (in the stream only when asked with `stream_options.include_usage`), and a
 * weather tool it calls when the client offers tools and answers from once the
 * client sends the tool's result. Streaming or not, as the request asks.
 */
import { after, before } from 'node:test';
import {
  chunk,
  completionBody,
  json,
  sse,
  startFakeUpstream,
  usageChunk,
  wordStream,
  type Behaviour,
  type FakeUpstream,
  type ReceivedRequest,
  type SseItem,
} from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';

export const REASONING = 'Six times seven.';
export const ANSWER = 'The answer is 42.';
export const USAGE = { prompt_tokens: 11, completion_tokens: 9, total_tokens: 20 };
export const TOOL_ARGS = { city: 'Paris' };

interface Message {
  role: string;
  content?: unknown;
  tool_call_id?: string;
}

/** The answer to the weather tool's result: proof that the result reached the model. */
export function weatherAnswer(toolResult: string): string {
  return `In Paris it is ${toolResult}.`;
}

export function modelBehaviour(_n: number, req: ReceivedRequest): Behaviour {
  const messages = (req.body.messages ?? []) as Message[];
  const lastMessage = messages.at(-1);
  const stream = req.body.stream === true;
  const includeUsage = (req.body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
  if (lastMessage?.role === 'tool') {
    const text = weatherAnswer(
      typeof lastMessage.content === 'string' ? lastMessage.content : JSON.stringify(lastMessage.content),
    );
    return stream ? sse(textItems('', text, includeUsage)) : json(completionBody(text, { usage: USAGE }));
  }
  if (Array.isArray(req.body.tools) && req.body.tools.length > 0) {
    const call = {
      id: 'call_weather_1',
      type: 'function',
      function: { name: 'get_weather', arguments: JSON.stringify(TOOL_ARGS) },
    };
    if (!stream)
      return json(completionBody(null, { message: { tool_calls: [call] }, finish_reason: 'tool_calls', usage: USAGE }));
    return sse([
      chunk({
        role: 'assistant',
        content: null,
        tool_calls: [{ index: 0, ...call, function: { name: 'get_weather', arguments: '' } }],
      }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
      chunk({}, 'tool_calls'),
      ...(includeUsage ? [usageChunk(USAGE)] : []),
    ]);
  }
  if (!stream) return json(completionBody(ANSWER, { message: { reasoning_content: REASONING }, usage: USAGE }));
  return sse(textItems(REASONING, ANSWER, includeUsage));
}

function textItems(reasoning: string, text: string, includeUsage: boolean): SseItem[] {
  const items: SseItem[] = [chunk({ role: 'assistant', content: '' })];
  for (const piece of reasoning.match(/\S+\s*/g) ?? []) items.push(chunk({ reasoning_content: piece }));
  for (const piece of text.match(/\S+\s*/g) ?? []) items.push(chunk({ content: piece }));
  items.push(chunk({}, 'stop'));
  if (includeUsage) items.push(usageChunk(USAGE));
  return items;
}

/** A stream that commits ("Half an answer") and then breaks: the client must see an error. */
export const BROKEN_STREAM: Behaviour = sse(
  [chunk({ role: 'assistant', content: '' }), chunk({ content: 'Half an' }), chunk({ content: ' answer' })],
  { end: 'reset' },
);
export const PARTIAL = 'Half an answer';

/** What the second endpoint answers instead: a different answer, which must never be glued on. */
export const OTHER_ANSWER = 'Something else entirely.';

export interface ClientRig {
  /** Always 503 (a Chutes-like `{"detail"}` body). */
  down: FakeUpstream;
  /** {@link modelBehaviour}. */
  model: FakeUpstream;
  proxy: RunningProxy;
}

/**
 * Starts, for the file, the proxy with two groups: `main` (down, then the
 * model: every request fails over once) and `cut` (a stream that breaks after
 * commit, then a fallback that ignores a prefill and answers differently, as
 * OpenAI does: it must never be glued on). Read the rig inside tests.
 */
export function clientRig(): ClientRig {
  const rig = {} as ClientRig;
  const upstreams: FakeUpstream[] = [];
  before(async () => {
    const start = async (b: Parameters<typeof startFakeUpstream>[0]): Promise<FakeUpstream> => {
      const u = await startFakeUpstream(b);
      upstreams.push(u);
      return u;
    };
    rig.down = await start(json({ detail: "No instances available (yet) for chute_id='x'" }, 503));
    rig.model = await start(modelBehaviour);
    const cut = await start(BROKEN_STREAM);
    const other = await start((_n, req) =>
      req.body.stream === true ? sse(wordStream(OTHER_ANSWER.split(/(?<= )/))) : json(completionBody(OTHER_ANSWER)),
    );
    rig.proxy = await startProxy([
      group('main', [endpoint(rig.down.baseurl, { name: 'down' }), endpoint(rig.model.baseurl, { name: 'model' })]),
      // The fallback's prefill is left at its default (an OpenAI-typed endpoint is never sent one), and
      // `openrouter` says it continues prefills yet answers afresh: both must surface as an error.
      group('cut', [endpoint(cut.baseurl, { name: 'cut' }), endpoint(other.baseurl, { name: 'other' })]),
      group('cut-or', [
        endpoint(cut.baseurl, { name: 'cut' }),
        endpoint(other.baseurl, { name: 'other', type: 'openrouter' }),
      ]),
    ]);
  });
  after(async () => {
    await rig.proxy.close();
    await Promise.all(upstreams.map((u) => u.close()));
  });
  return rig;
}
