/**
 * Tool calls on `/v1/messages` that chat upstreams send awkwardly: parallel
 * calls whose arguments interleave, and tool names longer than chat
 * endpoints accept.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { chunk, sse, startFakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';

let proxy: RunningProxy;
let client: Anthropic;

before(async () => {
  proxy = await startProxy([]);
  client = new Anthropic({ baseURL: proxy.origin, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
});

const user = (text: string): Anthropic.MessageParam => ({ role: 'user', content: text });

describe('/v1/messages tool calls', () => {
  it('parallel tool calls whose arguments interleave still arrive as whole, ordered tool_use blocks', async () => {
    const interleaved = await startFakeUpstream(
      sse([
        chunk({
          role: 'assistant',
          tool_calls: [{ index: 0, id: 'call_x', type: 'function', function: { name: 'read', arguments: '' } }],
        }),
        chunk({
          tool_calls: [{ index: 1, id: 'call_y', type: 'function', function: { name: 'read', arguments: '{"path":' } }],
        }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"path":"a.txt"}' } }] }),
        chunk({ tool_calls: [{ index: 1, function: { arguments: '"b.txt"}' } }] }),
        chunk({}, 'tool_calls'),
      ]),
    );
    proxy.registry.set(group('interleaved', [endpoint(interleaved.baseurl, { name: 'interleaved' })]));
    try {
      const types: string[] = [];
      const stream = client.messages.stream({ model: 'interleaved', max_tokens: 10, messages: [user('read both')] });
      stream.on('streamEvent', (e) =>
        types.push(
          e.type === 'content_block_start' || e.type === 'content_block_stop' ? `${e.type}:${e.index}` : e.type,
        ),
      );
      const message = await stream.finalMessage();
      assert.deepEqual(
        message.content.map((b) => b.type === 'tool_use' && [b.id, b.input]),
        [
          ['call_x', { path: 'a.txt' }],
          ['call_y', { path: 'b.txt' }],
        ],
      );
      assert.deepEqual(
        types.filter((t) => t.startsWith('content_block_s')),
        ['content_block_start:0', 'content_block_stop:0', 'content_block_start:1', 'content_block_stop:1'],
      );
    } finally {
      await interleaved.close();
    }
  });

  it('a tool name over 64 characters goes upstream shortened and comes back as the client named it', async () => {
    const long = `mcp__${'very_long_server_name_'.repeat(4)}__search`;
    const caller = await startFakeUpstream((_n, req) => {
      const name = (req.body.tools as Array<{ function: { name: string } }>)[0]!.function.name;
      return sse([
        chunk({
          role: 'assistant',
          tool_calls: [{ index: 0, id: 'call_l', type: 'function', function: { name, arguments: '{}' } }],
        }),
        chunk({}, 'tool_calls'),
      ]);
    });
    proxy.registry.set(group('long', [endpoint(caller.baseurl, { name: 'caller' })]));
    try {
      const message = await client.messages.create({
        model: 'long',
        max_tokens: 10,
        messages: [user('search')],
        tools: [{ name: long, input_schema: { type: 'object' } }],
      });
      const sent = (caller.requests[0]!.body.tools as Array<{ function: { name: string } }>)[0]!.function.name;
      assert.ok(sent.length <= 64 && sent !== long, sent);
      assert.equal(message.content[0]?.type === 'tool_use' && message.content[0].name, long);
    } finally {
      await caller.close();
    }
  });
});
