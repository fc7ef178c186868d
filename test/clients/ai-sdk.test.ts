/**
 * The Vercel AI SDK (`ai` v6 + `@ai-sdk/openai-compatible` v2, the newest
 * majors that run on Node 20) as the client of the real proxy server, through
 * a failover: what an app built on the AI SDK sees.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { APICallError, generateText, stepCountIs, streamText, tool, type TextStreamPart, type ToolSet } from 'ai';
import { z } from 'zod';
import { completionBody, json, startFakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { ANSWER, clientRig, PARTIAL, REASONING, TOOL_ARGS, USAGE, weatherAnswer } from './model.js';

const rig = clientRig();
/** The AI SDK model for a group (made inside tests: the rig starts in a hook). */
const provider = (group: string) =>
  createOpenAICompatible({ name: 'failproxy', baseURL: rig.proxy.baseURL, apiKey: 'unused', includeUsage: true })(
    group,
  );

const weather = {
  get_weather: tool({
    description: 'The weather in a city',
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => `21 °C in ${city}`,
  }),
} satisfies ToolSet;

describe('Vercel AI SDK through FailProxy', () => {
  it('generateText: text, reasoning_content as reasoning, usage', async () => {
    const result = await generateText({ model: provider('main'), prompt: 'What is six times seven?', maxRetries: 0 });
    assert.equal(result.text, ANSWER);
    assert.equal(result.reasoningText, REASONING);
    assert.equal(result.finishReason, 'stop');
    assert.deepEqual(
      [result.usage.inputTokens, result.usage.outputTokens, result.usage.totalTokens],
      [USAGE.prompt_tokens, USAGE.completion_tokens, USAGE.total_tokens],
    );
    assert.equal(result.response.headers?.['x-failproxy-endpoint'], 'model');
  });

  it('streamText: the text and reasoning deltas, the finish and the usage', async () => {
    const result = streamText({ model: provider('main'), prompt: 'What is six times seven?', maxRetries: 0 });
    let text = '';
    let reasoning = '';
    for await (const part of result.fullStream) {
      if (part.type === 'text-delta') text += part.text;
      if (part.type === 'reasoning-delta') reasoning += part.text;
      assert.notEqual(part.type, 'error');
    }
    assert.equal(text, ANSWER);
    assert.equal(reasoning, REASONING);
    assert.equal(await result.finishReason, 'stop');
    assert.equal((await result.usage).totalTokens, USAGE.total_tokens);
    assert.deepEqual(rig.model.requests.at(-1)?.body.stream_options, { include_usage: true });
  });

  for (const streaming of [false, true]) {
    it(`a multi-step tool loop (${streaming ? 'streamText' : 'generateText'}): call, result, answer`, async () => {
      const options = {
        model: provider('main'),
        prompt: 'Weather in Paris?',
        tools: weather,
        stopWhen: stepCountIs(4),
        maxRetries: 0,
      };
      const before = rig.model.requests.length;
      const result = streaming ? streamText(options) : await generateText(options);
      const steps = await result.steps;
      assert.equal(await result.text, weatherAnswer('21 °C in Paris'));
      assert.equal(steps.length, 2);
      assert.deepEqual(
        steps[0]!.toolCalls.map((c) => [c.toolName, c.input]),
        [['get_weather', TOOL_ARGS]],
      );
      assert.equal(steps[0]!.finishReason, 'tool-calls');
      // The second round trip carried the call and its result back through the proxy.
      const sent = rig.model.requests.slice(before).at(-1)!.body.messages as Array<Record<string, unknown>>;
      assert.deepEqual(
        sent.map((m) => m.role),
        ['user', 'assistant', 'tool'],
      );
      assert.equal(sent[2]!.tool_call_id, 'call_weather_1');
    });
  }

  for (const g of ['cut', 'cut-or']) {
    it(`${g}: a stream that breaks after commit ends in an error part and finishReason "error", never a clean finish`, async () => {
      const errors: unknown[] = [];
      const result = streamText({
        model: provider(g),
        prompt: 'hi',
        maxRetries: 0,
        onError: ({ error }) => void errors.push(error),
      });
      let text = '';
      const parts: Array<TextStreamPart<ToolSet>['type']> = [];
      for await (const part of result.fullStream) {
        parts.push(part.type);
        if (part.type === 'text-delta') text += part.text;
      }
      assert.equal(text, PARTIAL, 'the partial answer, and none of the fallback’s different answer');
      assert.ok(parts.includes('error'), `parts: ${parts.join(', ')}`);
      assert.equal(errors.length, 1);
      assert.match(String((errors[0] as Error).message), /stream broke/);
      assert.equal(await result.finishReason, 'error');
    });
  }

  it('all endpoints failed: a 502 APICallError with the per-endpoint trace', async () => {
    rig.proxy.registry.set(group('dead', [endpoint(rig.down.baseurl, { name: 'only', model: 'dead-model' })]));
    await assert.rejects(generateText({ model: provider('dead'), prompt: 'hi', maxRetries: 0 }), (err: unknown) => {
      assert.ok(APICallError.isInstance(err), String(err));
      assert.equal(err.statusCode, 502);
      assert.match(err.message, /\[only\] server 503/);
      assert.equal(err.responseHeaders?.['x-should-retry'], 'false');
      return true;
    });
  });

  it('retries wait for the Retry-After of a cooling group, then the recovered endpoint answers', async () => {
    // A 503 cools this endpoint for 2.5 s at once; the AI SDK ignores
    // x-should-retry: false and retries, but after retry-after-ms (2500), not
    // its default first backoff of 2 s.
    const flaky = await startFakeUpstream((n) =>
      n === 1 ? json({ detail: 'overloaded' }, 503) : json(completionBody('recovered')),
    );
    try {
      rig.proxy.registry.set(
        group('flaky', [endpoint(flaky.baseurl, { name: 'flaky' })], { cooldown: { failures: 1, seconds: 2.5 } }),
      );
      const times: number[] = [];
      const { text } = await generateText({
        model: createOpenAICompatible({
          name: 'failproxy',
          baseURL: rig.proxy.baseURL,
          apiKey: 'unused',
          fetch: (input, init) => {
            times.push(performance.now());
            return fetch(input, init);
          },
        })('flaky'),
        prompt: 'hi',
        maxRetries: 1,
      });
      assert.equal(text, 'recovered');
      assert.equal(flaky.requests.length, 2, 'one failure, one answer after the cooldown');
      assert.equal(times.length, 2);
      const waited = times[1]! - times[0]!;
      assert.ok(waited >= 2400, `the SDK waited ${Math.round(waited)} ms, less than the cooldown`);
    } finally {
      await flaky.close();
    }
  });
});
