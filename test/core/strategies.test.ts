/**
 * Load balancing between endpoints (issue 15): `weighted` inside priority
 * tiers, `latency` with exploration, and sticky sessions for prompt caches.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChatRequest, EngineEvent } from '../../src/core/types.js';
import { completionBody, json } from '../helpers/fake-upstream.js';
import { chatRequest, last, runAll } from '../helpers/groups.js';
import { perKey, poolGroup } from '../helpers/pools.js';
import { testRig } from '../helpers/rig.js';

const { upstream, engine } = testRig();

const answered = (events: EngineEvent[]): string | null => {
  const end = last(events);
  return end.type === 'done' ? end.summary.endpoint : null;
};

describe('strategy: weighted', () => {
  it('splits 400 requests 3:1 by weight', async () => {
    const a = await upstream(json(completionBody('a')));
    const b = await upstream(json(completionBody('b')));
    const g = poolGroup({
      strategy: 'weighted',
      endpoints: [
        { name: 'a', baseurl: a.baseurl, model: 'm', apikey: 'ka', weight: 3 },
        { name: 'b', baseurl: b.baseurl, model: 'm', apikey: 'kb', weight: 1 },
      ],
    });
    const e = engine();
    for (let i = 0; i < 400; i++) await runAll(e, g, chatRequest({ messages: [{ role: 'user', content: `q${i}` }] }));
    assert.ok(Math.abs(a.requests.length - 300) <= 20, `a served ${a.requests.length}, expected 300 ± 5 %`);
    assert.ok(Math.abs(b.requests.length - 100) <= 20, `b served ${b.requests.length}, expected 100 ± 5 %`);
  });

  it('uses a lower priority tier only when the tier above has no usable endpoint', async () => {
    const top = await upstream(json(completionBody('top')));
    const low = await upstream(json(completionBody('low')));
    const g = poolGroup({
      strategy: 'weighted',
      sticky: false,
      endpoints: [
        { name: 'low', baseurl: low.baseurl, model: 'm', apikey: 'kl', priority: 2, weight: 100 },
        { name: 'top', baseurl: top.baseurl, model: 'm', apikey: 'kt', priority: 1 },
      ],
    });
    const e = engine();
    for (let i = 0; i < 10; i++) assert.equal(answered(await runAll(e, g, chatRequest())), 'top');
    top.setBehaviour(json({ error: { message: 'bad key' } }, 401));
    assert.equal(answered(await runAll(e, g, chatRequest())), 'low');
    assert.equal(answered(await runAll(e, g, chatRequest())), 'low');
    assert.equal(top.requests.length, 11, 'the cooled endpoint is not tried again');
  });
});

describe('strategy: latency', () => {
  it('moves traffic to the faster endpoint and comes back after it recovers', async () => {
    const a = await upstream({ kind: 'json', body: completionBody('a'), delayMs: 5 });
    const b = await upstream({ kind: 'json', body: completionBody('b'), delayMs: 300 });
    const g = poolGroup({
      strategy: 'latency',
      sticky: false,
      endpoints: [
        { name: 'a', baseurl: a.baseurl, model: 'm', apikey: 'ka' },
        { name: 'b', baseurl: b.baseurl, model: 'm', apikey: 'kb' },
      ],
    });
    const e = engine();
    const share = async (n: number): Promise<Record<string, number>> => {
      const counts: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        const who = answered(await runAll(e, g, chatRequest())) ?? 'none';
        counts[who] = (counts[who] ?? 0) + 1;
      }
      return counts;
    };
    await share(4);
    const fastA = await share(30);
    assert.ok((fastA['a'] ?? 0) >= 22, `a is faster and takes most requests: ${JSON.stringify(fastA)}`);

    a.setBehaviour({ kind: 'json', body: completionBody('a'), delayMs: 300 });
    b.setBehaviour({ kind: 'json', body: completionBody('b'), delayMs: 5 });
    await share(30);
    const fastB = await share(30);
    assert.ok((fastB['b'] ?? 0) >= 22, `traffic moved to b: ${JSON.stringify(fastB)}`);

    a.setBehaviour({ kind: 'json', body: completionBody('a'), delayMs: 5 });
    b.setBehaviour({ kind: 'json', body: completionBody('b'), delayMs: 300 });
    await share(60);
    const back = await share(30);
    assert.ok((back['a'] ?? 0) >= 22, `a recovered and is seen again: ${JSON.stringify(back)}`);
  });
});

describe('sticky sessions', () => {
  const conversation = (turns: number, opening: string): ChatRequest => {
    const messages: ChatRequest['messages'] = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: opening },
    ];
    for (let t = 1; t < turns; t++) messages.push({ role: 'assistant', content: `answer ${t}` }, { role: 'user', content: `follow-up ${t}` });
    return chatRequest({ messages });
  };

  it('keeps 20 turns of one conversation on one lane while other conversations spread', async () => {
    const up = await upstream(json(completionBody('ok')));
    const g = poolGroup({ endpoints: [{ name: 'or', baseurl: up.baseurl, model: 'm', apikey: ['${K1}', '${K2}', '${K3}'] }] });
    const e = engine();
    const lanes = new Set<string | null>();
    const others: Array<string | null> = [];
    for (let turn = 1; turn <= 20; turn++) {
      lanes.add(answered(await runAll(e, g, conversation(turn, 'Plan my trip to Lisbon'))));
      others.push(answered(await runAll(e, g, conversation(1, `Another conversation ${turn}`))));
    }
    assert.equal(lanes.size, 1, `one lane for the whole conversation: ${[...lanes].join(', ')}`);
    assert.equal(new Set(others).size, 3, 'new conversations still spread over every key');
    const counts = Object.values(perKey(up));
    assert.equal(counts.length, 3);
  });

  it('pins by prompt_cache_key, metadata.user_id or the session id, and a failure breaks the pin', async () => {
    const up = await upstream(json(completionBody('ok')));
    const g = poolGroup({ endpoints: [{ name: 'or', baseurl: up.baseurl, model: 'm', apikey: ['${K1}', '${K2}', '${K3}'] }] });
    const e = engine();
    const byKey = new Set<string | null>();
    const byUser = new Set<string | null>();
    const bySession = new Set<string | null>();
    for (let i = 0; i < 6; i++) {
      const messages = [{ role: 'user', content: `different every time ${i}` }];
      byKey.add(answered(await runAll(e, g, chatRequest({ messages, prompt_cache_key: 'conv-1' }))));
      byUser.add(answered(await runAll(e, g, chatRequest({ messages, metadata: { user_id: 'user-7' } }))));
      const events: EngineEvent[] = [];
      for await (const ev of e.run({ requestId: `s${i}`, group: g, body: chatRequest({ messages }), sessionId: 'sess-9' })) events.push(ev);
      bySession.add(answered(events));
    }
    assert.equal(byKey.size, 1);
    assert.equal(byUser.size, 1);
    assert.equal(bySession.size, 1);

    const pinned = [...byKey][0]!;
    const pinnedKey = g.endpoints.find((lane) => lane.name === pinned)!.apikey;
    up.setBehaviour((_n, req) => (req.headers.authorization === `Bearer ${pinnedKey}` ? json({ error: { message: 'busy' } }, 503) : json(completionBody('ok'))));
    const moved = answered(await runAll(e, g, chatRequest({ prompt_cache_key: 'conv-1' })));
    assert.ok(moved !== null && moved !== pinned, 'the failing lane is left for a sibling');
    up.setBehaviour(json(completionBody('ok')));
    assert.equal(answered(await runAll(e, g, chatRequest({ prompt_cache_key: 'conv-1' }))), moved, 'the pin follows the lane that answered');
  });

  it('sticky: false spreads even one conversation', async () => {
    const up = await upstream(json(completionBody('ok')));
    const g = poolGroup({ sticky: false, endpoints: [{ name: 'or', baseurl: up.baseurl, model: 'm', apikey: ['${K1}', '${K2}', '${K3}'] }] });
    const e = engine();
    for (let i = 0; i < 6; i++) await runAll(e, g, chatRequest({ prompt_cache_key: 'conv-1' }));
    assert.deepEqual(Object.values(perKey(up)), [2, 2, 2]);
  });
});
