/**
 * `/v1/messages` through the official Anthropic SDK against fake chat
 * upstreams: failovers stay invisible, a break after commit raises, tool use
 * and thinking round-trip (SPEC §3 kept in the Messages protocol).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { startFakeUpstream, wordStream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { readLogLines, startProxy, type RunningProxy } from '../helpers/proxy.js';
import { answers, startFailoverUpstreams, type FailoverUpstreams } from '../helpers/agent-upstreams.js';

let upstreams: FailoverUpstreams;
let deepseek: FakeUpstream;
let proxy: RunningProxy;
let client: Anthropic;

before(async () => {
  upstreams = await startFailoverUpstreams();
  deepseek = await startFakeUpstream(answers(wordStream(['Sunny', ' in Paris.']), { content: 'Sunny in Paris.' }));
  proxy = await startProxy(
    [
      upstreams.main,
      upstreams.tools,
      group('deepseek', [endpoint(deepseek.baseurl, { name: 'deepseek', model: 'deepseek-reasoner' })]),
      group('plain', [endpoint(deepseek.baseurl, { name: 'plain', model: 'qwen3' })]),
      upstreams.cut,
      upstreams.limited,
    ],
    {
      modelMap: [
        { pattern: 'claude-sonnet-*', group: 'main' },
        { pattern: 'claude-haiku-*', group: 'tools' },
      ],
    },
  );
  client = new Anthropic({ baseURL: proxy.origin, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await Promise.all([upstreams.close(), deepseek.close()]);
});

const user = (text: string): Anthropic.MessageParam => ({ role: 'user', content: text });

describe('/v1/messages through the Anthropic SDK', () => {
  it('answers non-streaming through 503, 429 and a 200 carrying an error, with thinking and usage', async () => {
    const { data, response } = await client.messages
      .create({ model: 'main', max_tokens: 100, messages: [user('hi')] })
      .withResponse();
    assert.equal(response.headers.get('x-failproxy-endpoint'), 'thinker');
    assert.equal(response.headers.get('x-failproxy-attempts'), '4');
    assert.equal(data.type, 'message');
    assert.equal(data.stop_reason, 'end_turn');
    const [thinking, text] = data.content;
    assert.equal(thinking?.type, 'thinking');
    assert.equal(thinking?.type === 'thinking' && thinking.thinking, 'Let me think.');
    assert.match(thinking?.type === 'thinking' ? thinking.signature : '', /^fp1\./);
    assert.deepEqual(text, { type: 'text', text: 'The answer is 42.' });
    assert.equal(data.usage.output_tokens, 7);
  });

  it('streams through the same failovers; finalMessage() has thinking (signed), text and real usage', async () => {
    const stream = client.messages.stream({
      model: 'claude-sonnet-4-5-20250929',
      max_tokens: 100,
      messages: [user('hi')],
    });
    const types: string[] = [];
    stream.on('streamEvent', (event) =>
      types.push(event.type === 'content_block_delta' ? `delta:${event.delta.type}` : event.type),
    );
    const message = await stream.finalMessage();
    assert.deepEqual(
      message.content.map((b) => b.type),
      ['thinking', 'text'],
    );
    assert.equal(message.content[1]?.type === 'text' && message.content[1].text, 'The answer is 42.');
    assert.equal(message.stop_reason, 'end_turn');
    assert.deepEqual(message.usage, { input_tokens: 40, output_tokens: 12, cache_read_input_tokens: 0 });
    assert.deepEqual(types, [
      'message_start',
      'content_block_start',
      'delta:thinking_delta',
      'delta:thinking_delta',
      'delta:signature_delta',
      'content_block_stop',
      'content_block_start',
      'delta:text_delta',
      'delta:text_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
  });

  it('streams fragmented tool calls (one missing its index) as tool_use blocks, stop_reason tool_use', async () => {
    const message = await client.messages
      .stream({
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        messages: [user('weather and time?')],
        tools: [
          { name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } },
          { name: 'get_time', input_schema: { type: 'object', properties: { tz: { type: 'string' } } } },
        ],
      })
      .finalMessage();
    assert.equal(message.stop_reason, 'tool_use');
    const uses = message.content.filter((b) => b.type === 'tool_use');
    assert.deepEqual(
      uses.map((b) => b.type === 'tool_use' && [b.id, b.name, b.input]),
      [
        ['call_a', 'get_weather', { city: 'Paris' }],
        ['call_b', 'get_time', { tz: 'CET' }],
      ],
    );
    assert.equal(message.content[0]?.type, 'thinking');
  });

  it('a tool loop round-trips: tool_result follows its call, signed thinking returns as reasoning_content only for DeepSeek', async () => {
    const first = await client.messages.create({
      model: 'tools',
      max_tokens: 100,
      messages: [user('weather?')],
      tools: [{ name: 'get_weather', input_schema: { type: 'object' } }],
    });
    const signature = 'fp1.AwA.' + 'x'.repeat(43);
    const history: Anthropic.MessageParam[] = [
      user('weather?'),
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'edited by the client', signature: (await signedThinking()).signature },
          { type: 'thinking', thinking: 'Forged.', signature },
          { type: 'thinking', thinking: 'From Anthropic.', signature: 'EqQBCkYIBxgCKkB' },
          ...first.content.filter((b) => b.type === 'tool_use'),
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'here you go' },
          { type: 'tool_result', tool_use_id: 'call_a', content: [{ type: 'text', text: 'sunny' }] },
        ],
      },
    ];
    for (const model of ['deepseek', 'plain']) {
      const before = deepseek.requests.length;
      const answer = await client.messages.create({ model, max_tokens: 100, messages: history });
      assert.equal(answer.content[0]?.type === 'text' && answer.content[0].text, 'Sunny in Paris.');
      const sent = deepseek.requests[before]!.body.messages as Array<Record<string, unknown>>;
      assert.deepEqual(
        sent.map((m) => m.role),
        ['user', 'assistant', 'tool', 'user'],
      );
      assert.equal(sent[2]?.tool_call_id, 'call_a');
      assert.equal(sent[2]?.content, 'sunny');
      assert.deepEqual(sent[1]?.tool_calls, [
        { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      ]);
      // The reasoning the signature carries, not the text the client edited.
      if (model === 'deepseek') assert.equal(sent[1]?.reasoning_content, 'Let me think.');
      else assert.equal('reasoning_content' in sent[1]!, false);
    }
  });

  it('a break after commit raises in the SDK; no end_turn is ever sent', async () => {
    const stream = client.messages.stream({ model: 'cut', max_tokens: 100, messages: [user('hi')] });
    const text: string[] = [];
    stream.on('text', (t) => text.push(t));
    await assert.rejects(stream.finalMessage(), (err: unknown) => {
      assert.ok(err instanceof Anthropic.APIError);
      assert.match(String(err.message), /api_error|interrupted|broke|reset|closed/i);
      return true;
    });
    assert.equal(text.join(''), 'Half an answer');
    const raw = await rawStream('cut');
    assert.match(raw, /event: error\ndata: \{"type":"error","error":\{"type":"api_error"/);
    assert.doesNotMatch(raw, /end_turn|message_stop/);
  });

  it('every endpoint rate-limited before commit: a 429 rate_limit_error with Retry-After, streaming or not', async () => {
    for (const stream of [false, true]) {
      const res = await fetch(`${proxy.origin}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify({ model: 'limited', max_tokens: 10, stream, messages: [user('hi')] }),
      });
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '7');
      const body = (await res.json()) as { type: string; error: { type: string; message: string } };
      assert.equal(body.type, 'error');
      assert.equal(body.error.type, 'rate_limit_error');
    }
    await assert.rejects(
      client.messages.create({ model: 'limited', max_tokens: 10, messages: [user('hi')] }),
      Anthropic.RateLimitError,
    );
  });

  it('an unknown model is an Anthropic 404 naming the groups; claude-* names map by --model-map', async () => {
    await assert.rejects(
      client.messages.create({ model: 'claude-opus-4-1', max_tokens: 10, messages: [user('hi')] }),
      (err: unknown) => {
        assert.ok(err instanceof Anthropic.NotFoundError);
        assert.match(err.message, /not_found_error/);
        assert.match(err.message, /Available groups: cut, deepseek, limited, main, plain, tools/);
        return true;
      },
    );
  });

  it('bad bodies get Anthropic-shaped 400s and never a crash', async () => {
    const deep = '{"model":"main","messages":' + '['.repeat(5000) + ']'.repeat(5000) + '}';
    for (const body of ['{not json', '[]', '{"messages":[]}', '{"model":"main","messages":"hi"}', deep]) {
      const res = await fetch(`${proxy.origin}/v1/messages`, { method: 'POST', body });
      assert.equal(res.status, 400, body.slice(0, 40));
      const json = (await res.json()) as { type: string; error: { type: string } };
      assert.deepEqual([json.type, json.error.type], ['error', 'invalid_request_error']);
    }
    assert.equal((await fetch(`${proxy.origin}/health`)).status, 200);
  });

  it('count_tokens is answered locally, rounded up and marked as an estimate', async () => {
    const { data, response } = await client.messages
      .countTokens({ model: 'claude-sonnet-4-5', messages: [user('x'.repeat(300))], system: 'be brief' })
      .withResponse();
    assert.equal(response.headers.get('x-failproxy-estimate'), 'true');
    assert.ok(data.input_tokens >= 100, `estimate ${data.input_tokens} should not run short of 300 characters / 3`);
  });

  it('a Claude Code-shaped request (system blocks with cache_control, tools, thinking, metadata) reaches the upstream translated', async () => {
    const before = deepseek.requests.length;
    const res = await fetch(`${proxy.origin}/v1/messages?beta=true`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': 'k',
        'anthropic-version': '2023-06-01',
        'anthropic-beta': 'interleaved-thinking-2025-05-14',
      },
      body: JSON.stringify({
        model: 'plain',
        max_tokens: 32000,
        stream: true,
        system: [
          { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude." },
          { type: 'text', text: 'Use tools.', cache_control: { type: 'ephemeral' } },
        ],
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'list files', cache_control: { type: 'ephemeral' } }] },
        ],
        tools: [
          {
            name: 'Bash',
            description: 'Run a command',
            input_schema: { type: 'object', properties: { command: { type: 'string' } } },
          },
        ],
        tool_choice: { type: 'auto', disable_parallel_tool_use: true },
        thinking: { type: 'enabled', budget_tokens: 31999 },
        stop_sequences: ['</done>'],
        metadata: { user_id: 'user_abc_account__session_123' },
        temperature: 1,
      }),
    });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /event: message_stop/);
    const sent = deepseek.requests[before]!.body;
    assert.deepEqual(sent.messages, [
      { role: 'system', content: "You are Claude Code, Anthropic's official CLI for Claude.\n\nUse tools." },
      { role: 'user', content: 'list files' },
    ]);
    assert.deepEqual(sent.tools, [
      {
        type: 'function',
        function: {
          name: 'Bash',
          description: 'Run a command',
          parameters: { type: 'object', properties: { command: { type: 'string' } } },
        },
      },
    ]);
    assert.equal(sent.tool_choice, 'auto');
    assert.equal(sent.parallel_tool_calls, false);
    assert.equal(sent.reasoning_effort, 'high');
    assert.deepEqual(sent.stop, ['</done>']);
    assert.equal(sent.max_tokens, 32000);
    assert.equal('metadata' in sent || 'thinking' in sent || 'system' in sent, false);
  });

  it('the request log line names the front door', async () => {
    const lines = await readLogLines(proxy.logger, proxy.logDir);
    const requests = lines.filter((l) => l.event === 'request' && l.api === 'messages');
    assert.ok(requests.length >= 5);
    assert.ok(
      requests.some((l) => l.group === 'main' && l.endpoint === 'thinker' && l.attempts === 4 && l.outcome === 'ok'),
    );
    assert.ok(requests.some((l) => l.group === 'cut' && l.outcome === 'interrupted'));
    const logs = await runCli(['logs', '--log-dir', proxy.logDir, '--group', 'main', '-n', '50'], { env: cliEnv({ NO_COLOR: '1' }) });
    assert.match(logs.stdout, /main {2}thinker ✓ 200 .*via messages/);
  });
});

async function signedThinking(): Promise<{ signature: string }> {
  const message = await client.messages.create({ model: 'main', max_tokens: 100, messages: [user('hi')] });
  const block = message.content.find((b) => b.type === 'thinking');
  assert.ok(block && block.type === 'thinking');
  return { signature: block.signature };
}

async function rawStream(model: string): Promise<string> {
  const res = await fetch(`${proxy.origin}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 10, stream: true, messages: [user('hi')] }),
  });
  return res.text();
}
