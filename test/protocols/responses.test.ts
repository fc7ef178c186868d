/**
 * `/v1/responses` through the official openai SDK (`responses.create`,
 * `responses.stream`) against fake chat upstreams: failovers, tool loops with
 * `function_call_output`, Codex's `custom` tools, reasoning,
 * `previous_response_id`, and a break after commit that must raise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { chunk, sse, startFakeUpstream, wordStream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { readLogLines, startProxy, type RunningProxy } from '../helpers/proxy.js';
import { answers, startFailoverUpstreams, type FailoverUpstreams } from '../helpers/agent-upstreams.js';

let upstreams: FailoverUpstreams;
let patcher: FakeUpstream;
let echo: FakeUpstream;
let proxy: RunningProxy;
let client: OpenAI;

const PATCH = '*** Begin Patch\n*** Add File: a.txt\n+hello\n*** End Patch';

before(async () => {
  upstreams = await startFailoverUpstreams();
  patcher = await startFakeUpstream(
    sse([
      chunk({ role: 'assistant', content: 'Patching.' }),
      chunk({
        tool_calls: [
          { index: 0, id: 'call_p', type: 'function', function: { name: 'apply_patch', arguments: '{"input":' } },
        ],
      }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify(PATCH) + '}' } }] }),
      chunk({}, 'tool_calls'),
    ]),
  );
  echo = await startFakeUpstream((_n, req) => {
    const finish = req.body.max_tokens === 3 ? 'length' : 'stop';
    return req.body.stream === true
      ? sse(wordStream(['Done', '.'], finish))
      : answers([], { content: 'Done.' }, finish)(_n, req);
  });
  proxy = await startProxy([
    upstreams.main,
    upstreams.tools,
    group('codex', [endpoint(patcher.baseurl, { name: 'patcher' })]),
    group('echo', [endpoint(echo.baseurl, { name: 'echo', model: 'deepseek-chat' })]),
    upstreams.cut,
    upstreams.limited,
  ]);
  client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await Promise.all([upstreams.close(), patcher.close(), echo.close()]);
});

const lastBody = (u: FakeUpstream): Record<string, unknown> => u.requests.at(-1)!.body;

describe('/v1/responses through the openai SDK', () => {
  it('answers non-streaming through 503, 429 and a 200 carrying an error, with reasoning and usage', async () => {
    const { data, response } = await client.responses.create({ model: 'main', input: 'hi' }).withResponse();
    assert.equal(response.headers.get('x-failproxy-endpoint'), 'thinker');
    assert.equal(data.status, 'completed');
    assert.match(data.id, /^resp_/);
    assert.equal(data.output_text, 'The answer is 42.');
    assert.deepEqual(
      data.output.map((o) => o.type),
      ['reasoning', 'message'],
    );
    assert.equal(data.usage?.output_tokens, 7);
  });

  it('streams through the same failovers in the order the SDK finalizes on, one id, increasing sequence numbers', async () => {
    const stream = client.responses.stream({ model: 'main', input: 'hi' });
    const events: Array<{ type: string; sequence_number: number }> = [];
    stream.on('event', (e) => events.push(e));
    const final = await stream.finalResponse();
    assert.equal(final.output_text, 'The answer is 42.');
    assert.equal(final.status, 'completed');
    assert.deepEqual(final.usage, {
      input_tokens: 40,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 12,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 52,
    });
    const reasoning = final.output[0];
    assert.ok(reasoning?.type === 'reasoning');
    assert.deepEqual(reasoning.summary, [{ type: 'summary_text', text: 'Let me think.' }]);
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.reasoning_summary_part.added',
        'response.reasoning_summary_text.delta',
        'response.reasoning_summary_text.delta',
        'response.reasoning_summary_text.done',
        'response.reasoning_summary_part.done',
        'response.output_item.done',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ],
    );
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_e, i) => i),
    );
  });

  it('streams fragmented function calls (one missing its index) as their own items; the follow-up sends function_call_output back', async () => {
    const tool = (name: string): OpenAI.Responses.FunctionTool => ({
      type: 'function',
      name,
      parameters: { type: 'object', properties: {} },
      strict: false,
    });
    const final = await client.responses
      .stream({ model: 'tools', input: 'weather and time?', tools: [tool('get_weather'), tool('get_time')] })
      .finalResponse();
    const calls = final.output.filter((o) => o.type === 'function_call');
    assert.deepEqual(
      calls.map((c) => c.type === 'function_call' && [c.call_id, c.name, c.arguments, c.status]),
      [
        ['call_a', 'get_weather', '{"city":"Paris"}', 'completed'],
        ['call_b', 'get_time', '{"tz":"CET"}', 'completed'],
      ],
    );
    await client.responses.create({
      model: 'echo',
      store: false,
      input: [
        { role: 'user', content: 'weather and time?' },
        // Sent back as received, the way agents replay their history.
        ...(final.output as OpenAI.Responses.ResponseInputItem[]),
        { type: 'function_call_output', call_id: 'call_a', output: 'sunny' },
        { type: 'function_call_output', call_id: 'call_b', output: '12:00' },
      ],
    });
    const sent = lastBody(echo).messages as Array<Record<string, unknown>>;
    assert.deepEqual(
      sent.map((m) => m.role),
      ['user', 'assistant', 'tool', 'tool'],
    );
    assert.equal(sent[1]?.reasoning_content, 'I should look both up.');
    assert.deepEqual(
      (sent[1]?.tool_calls as Array<{ id: string }>).map((c) => c.id),
      ['call_a', 'call_b'],
    );
    assert.deepEqual([sent[2]?.tool_call_id, sent[2]?.content, sent[3]?.content], ['call_a', 'sunny', '12:00']);
  });

  it("a custom tool (Codex's apply_patch) is wrapped as a function and its call unwrapped to custom_tool_call", async () => {
    const final = await client.responses
      .stream({
        model: 'codex',
        input: 'add a.txt',
        tools: [{ type: 'custom', name: 'apply_patch', description: 'Apply a patch', format: { type: 'text' } }],
      })
      .finalResponse();
    const call = final.output.find((o) => o.type === 'custom_tool_call');
    assert.ok(call?.type === 'custom_tool_call');
    assert.equal(call.input, PATCH);
    assert.equal(call.call_id, 'call_p');
    assert.equal(final.output_text, 'Patching.');
    const sentTool = (
      lastBody(patcher).tools as Array<{ type: string; function: { name: string; parameters: { required: string[] } } }>
    )[0];
    assert.equal(sentTool?.type, 'function');
    assert.deepEqual(sentTool?.function.parameters.required, ['input']);
  });

  it('previous_response_id continues a stored history; an unknown id is a 400 previous_response_not_found', async () => {
    const first = await client.responses.create({ model: 'echo', instructions: 'be brief', input: 'first question' });
    await client.responses.create({ model: 'echo', previous_response_id: first.id, input: 'second question' });
    const sent = lastBody(echo).messages as Array<Record<string, unknown>>;
    assert.deepEqual(
      sent.map((m) => [m.role, m.content]),
      [
        ['user', 'first question'],
        ['assistant', 'Done.'],
        ['user', 'second question'],
      ],
    );
    await assert.rejects(
      client.responses.create({ model: 'echo', previous_response_id: 'resp_unknown', input: 'x' }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.equal(err.code, 'previous_response_not_found');
        return true;
      },
    );
    const before = echo.requests.length;
    const unstored = await client.responses.create({ model: 'echo', store: false, input: 'x' });
    await assert.rejects(
      client.responses.create({ model: 'echo', previous_response_id: unstored.id, input: 'y' }),
      OpenAI.BadRequestError,
    );
    assert.equal(echo.requests.length, before + 1, 'no upstream call for an unknown id');
  });

  it('a break after commit is response.failed, and the SDK raises instead of returning the partial answer', async () => {
    const stream = client.responses.stream({ model: 'cut', input: 'hi' });
    const types: string[] = [];
    stream.on('event', (e) => types.push(e.type));
    await assert.rejects(stream.finalResponse(), OpenAI.APIError);
    assert.ok(types.includes('response.output_text.delta'));
    assert.equal(types.at(-1), 'response.failed');
    assert.ok(!types.includes('response.completed'));
    const res = await fetch(`${proxy.baseURL}/responses`, {
      method: 'POST',
      body: JSON.stringify({ model: 'cut', input: 'hi', stream: true }),
    });
    const raw = await res.text();
    assert.match(raw, /event: response\.failed\ndata: \{"type":"response\.failed".*"status":"failed"/);
    assert.doesNotMatch(raw, /response\.completed/);
  });

  it('finish_reason length is response.incomplete with reason max_output_tokens', async () => {
    const final = await client.responses.stream({ model: 'echo', input: 'hi', max_output_tokens: 3 }).finalResponse();
    assert.equal(final.status, 'incomplete');
    assert.deepEqual(final.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(lastBody(echo).max_tokens, 3);
  });

  it('every endpoint rate-limited before commit: a real 429 in the OpenAI error shape with Retry-After', async () => {
    for (const stream of [false, true]) {
      const res = await fetch(`${proxy.baseURL}/responses`, {
        method: 'POST',
        body: JSON.stringify({ model: 'limited', input: 'hi', stream }),
      });
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '7');
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'all_endpoints_failed');
    }
  });

  it('a hosted tool is a 400 naming it, before any upstream call', async () => {
    const before = echo.requests.length;
    await assert.rejects(
      client.responses.create({ model: 'echo', input: 'x', tools: [{ type: 'web_search' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.match(err.message, /web_search/);
        return true;
      },
    );
    assert.equal(echo.requests.length, before);
  });

  it('a Codex-shaped request (store false, full input, reasoning items, custom tool, prompt_cache_key) replays correctly', async () => {
    const signed = await client.responses.create({
      model: 'main',
      input: 'hi',
      include: ['reasoning.encrypted_content'],
    });
    const reasoning = signed.output.find((o) => o.type === 'reasoning');
    assert.ok(reasoning?.type === 'reasoning');
    assert.match(reasoning.encrypted_content ?? '', /^fp1\./);
    const res = await fetch(`${proxy.baseURL}/responses`, {
      method: 'POST',
      body: JSON.stringify({
        model: 'echo',
        instructions: 'You are Codex.',
        store: false,
        stream: true,
        include: ['reasoning.encrypted_content'],
        prompt_cache_key: 'session-1',
        parallel_tool_calls: false,
        reasoning: { effort: 'high', summary: 'auto' },
        tool_choice: 'auto',
        tools: [
          {
            type: 'function',
            name: 'shell',
            parameters: { type: 'object', properties: { command: { type: 'array' } } },
            strict: false,
          },
          { type: 'custom', name: 'apply_patch', format: { type: 'grammar', syntax: 'lark', definition: 'start: x' } },
        ],
        input: [
          { type: 'message', role: 'developer', content: [{ type: 'input_text', text: '<permissions>' }] },
          { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'fix it' }] },
          { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: reasoning.encrypted_content },
          { type: 'function_call', call_id: 'c1', name: 'shell', arguments: '{"command":["ls"]}' },
          { type: 'function_call_output', call_id: 'c1', output: 'a.txt' },
          { type: 'custom_tool_call', call_id: 'c2', name: 'apply_patch', input: PATCH },
          { type: 'custom_tool_call_output', call_id: 'c2', output: 'Done!' },
          { type: 'function_call_output', call_id: 'orphan', output: 'nobody asked' },
          { type: 'additional_tools', tools: [] },
          { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'thanks' }] },
        ],
      }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-failproxy-repaired-history'), '1');
    assert.match(await res.text(), /response\.completed/);
    const sent = lastBody(echo);
    const messages = sent.messages as Array<Record<string, unknown>>;
    assert.deepEqual(
      messages.map((m) => m.role),
      ['system', 'system', 'user', 'assistant', 'tool', 'assistant', 'tool', 'user'],
    );
    assert.equal(messages[0]?.content, 'You are Codex.');
    assert.equal(
      messages[3]?.reasoning_content,
      'Let me think.',
      'DeepSeek gets the reasoning its encrypted_content carried',
    );
    assert.deepEqual(
      (messages[5]?.tool_calls as Array<{ function: { arguments: string } }>)[0]?.function.arguments,
      JSON.stringify({ input: PATCH }),
    );
    assert.equal(sent.prompt_cache_key, 'session-1');
    assert.equal(sent.parallel_tool_calls, false);
    assert.equal(sent.reasoning_effort, 'high');
    assert.equal(sent.stream, true);
    for (const key of ['store', 'include', 'input', 'instructions', 'reasoning']) assert.equal(key in sent, false, key);
  });

  it('the request log line names the front door', async () => {
    const lines = await readLogLines(proxy.logger, proxy.logDir);
    const requests = lines.filter((l) => l.event === 'request' && l.api === 'responses');
    assert.ok(requests.some((l) => l.group === 'main' && l.endpoint === 'thinker' && l.outcome === 'ok'));
    assert.ok(requests.some((l) => l.group === 'cut' && l.outcome === 'interrupted'));
  });
});
