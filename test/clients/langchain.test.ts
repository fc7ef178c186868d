/**
 * LangChain's `ChatOpenAI` (`@langchain/openai` 1.5.8, the last release of
 * its only maintained major that runs on Node 20; 1.5.9+ needs Node 22) as the
 * client of the real proxy server, through a failover.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HumanMessage, type AIMessage, type AIMessageChunk, type BaseMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { ChatOpenAI, type ChatOpenAIFields } from '@langchain/openai';
import { z } from 'zod';
import { endpoint, group } from '../helpers/groups.js';
import { ANSWER, clientRig, PARTIAL, REASONING, TOOL_ARGS, USAGE, weatherAnswer } from './model.js';

const rig = clientRig();

function chat(group: string, fields: ChatOpenAIFields = {}): ChatOpenAI {
  return new ChatOpenAI({
    model: group,
    apiKey: 'unused',
    configuration: { baseURL: rig.proxy.baseURL },
    maxRetries: 0,
    ...fields,
  });
}

const weather = tool(async ({ city }) => `21 °C in ${city}`, {
  name: 'get_weather',
  description: 'The weather in a city',
  schema: z.object({ city: z.string() }),
});

describe('LangChain ChatOpenAI through FailProxy', () => {
  it('invoke: text, reasoning_content, usage_metadata', async () => {
    const message = await chat('main').invoke('What is six times seven?');
    assert.equal(message.content, ANSWER);
    assert.equal(message.additional_kwargs.reasoning_content, REASONING);
    assert.equal(message.response_metadata.finish_reason, 'stop');
    assert.deepEqual(
      [
        message.usage_metadata?.input_tokens,
        message.usage_metadata?.output_tokens,
        message.usage_metadata?.total_tokens,
      ],
      [USAGE.prompt_tokens, USAGE.completion_tokens, USAGE.total_tokens],
    );
  });

  it('stream: the content and reasoning chunks and the usage', async () => {
    let text = '';
    let reasoning = '';
    let total: number | undefined;
    // A custom base URL turns LangChain's stream usage off by default (WIRE.md §6): ask for it.
    for await (const part of await chat('main', { streamUsage: true }).stream('What is six times seven?')) {
      text += typeof part.content === 'string' ? part.content : '';
      reasoning += (part.additional_kwargs.reasoning_content as string | undefined) ?? '';
      total = part.usage_metadata?.total_tokens ?? total;
    }
    assert.equal(text, ANSWER);
    assert.equal(reasoning, REASONING);
    assert.equal(total, USAGE.total_tokens);
  });

  for (const streaming of [false, true]) {
    it(`a multi-step tool loop (${streaming ? 'streaming' : 'invoke'}): call, result, answer`, async () => {
      const bound = chat('main').bindTools([weather]);
      // Streaming, the chunks are concatenated as LangChain apps do (`invoke`
      // with `streaming: true` would count tokens with tiktoken, whose ranks it
      // fetches from the internet).
      const ask = async (messages: BaseMessage[]): Promise<AIMessage | AIMessageChunk> => {
        if (!streaming) return bound.invoke(messages);
        let whole: AIMessageChunk | undefined;
        for await (const part of await bound.stream(messages)) whole = whole ? whole.concat(part) : part;
        assert.ok(whole, 'the stream had chunks');
        return whole;
      };
      const messages: BaseMessage[] = [new HumanMessage('Weather in Paris?')];
      const before = rig.model.requests.length;
      const call = await ask(messages);
      assert.deepEqual(
        call.tool_calls?.map((c) => [c.name, c.args, c.id]),
        [['get_weather', TOOL_ARGS, 'call_weather_1']],
      );
      messages.push(call);
      for (const c of call.tool_calls ?? []) messages.push(await weather.invoke(c));
      const answer = await ask(messages);
      assert.equal(answer.content, weatherAnswer('21 °C in Paris'));
      const sent = rig.model.requests.slice(before).at(-1)!.body;
      assert.equal(sent.stream === true, streaming);
      assert.deepEqual(
        (sent.messages as Array<{ role: string }>).map((m) => m.role),
        ['user', 'assistant', 'tool'],
      );
    });
  }

  for (const g of ['cut', 'cut-or']) {
    it(`${g}: a stream that breaks after commit throws from the iteration, after the partial text only`, async () => {
      let text = '';
      await assert.rejects(
        async () => {
          for await (const part of await chat(g).stream('hi'))
            text += typeof part.content === 'string' ? part.content : '';
        },
        (err: unknown) => err instanceof Error && /stream broke/.test(err.message),
      );
      assert.equal(text, PARTIAL);
    });
  }

  it('all endpoints failed: the error carries status 502, x-should-retry: false and, when cooling, Retry-After', async () => {
    rig.proxy.registry.set(
      group('dead', [endpoint(rig.down.baseurl, { name: 'only', model: 'dead-model' })], {
        cooldown: { failures: 1, seconds: 40 },
      }),
    );
    await assert.rejects(chat('dead').invoke('hi'), (err: unknown) => {
      const e = err as Error & { status?: number; headers?: Headers };
      assert.equal(e.status, 502);
      assert.match(e.message, /\[only\] server 503/);
      assert.equal(e.headers?.get('x-should-retry'), 'false');
      assert.equal(e.headers?.get('retry-after'), '40');
      assert.ok(Number(e.headers?.get('retry-after-ms')) > 39_000);
      return true;
    });
  });
});
