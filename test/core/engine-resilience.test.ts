/**
 * Resilience options (SPEC §3.11): same-endpoint retries, mid-stream resume,
 * hedging, a request deadline and content filters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FailoverEngine } from '../../src/core/engine.js';
import { DEFAULT_RETRY } from '../../src/core/resilience.js';
import type { EngineEvent, Group, RetryOptions } from '../../src/core/types.js';
import {
  chunk,
  completionBody,
  json,
  sse,
  usageChunk,
  type Behaviour,
  type ReceivedRequest,
  type SseItem,
} from '../helpers/fake-upstream.js';
import { chatRequest, endpoint, group, last, runAll, streamedContent } from '../helpers/groups.js';
import { testRig } from '../helpers/rig.js';

const rig = testRig();
const upstream = rig.upstream;
const newEngine = (): FailoverEngine => rig.engine();

const retry = (overrides: Partial<RetryOptions>): RetryOptions => ({ ...DEFAULT_RETRY, ...overrides });
const starts = (events: EngineEvent[]) => events.flatMap((e) => (e.type === 'attempt_start' ? [e.endpoint] : []));

/** The answer every "model" here gives: 60 words. */
const WORDS = Array.from({ length: 60 }, (_, i) => `w${i} `);
const FULL = WORDS.join('');

function wordsItems(words: string[], finish = true): SseItem[] {
  return [chunk({ role: 'assistant', content: '' }), ...words.map((w) => chunk({ content: w })), ...(finish ? [chunk({}, 'stop'), usageChunk()] : [])];
}

const lastMessage = (req: ReceivedRequest) => (req.body.messages as Array<{ role: string; content: string }>).at(-1);

/** Continues a prefilled partial answer with the rest of the 60 words; answers from scratch otherwise. */
const prefillCapable = (_n: number, req: ReceivedRequest): Behaviour => {
  const lastMsg = lastMessage(req);
  if (lastMsg?.role === 'assistant') {
    // Tokens keep their leading space, as a model's do: the prefill ends before one.
    const rest = FULL.slice(lastMsg.content.length);
    return sse(wordsItems(rest.match(/\s*\S+\s*/g) ?? []));
  }
  return sse(wordsItems(WORDS));
};

/** Rejects an assistant prefill with a 400, answers the same 60 words from scratch. */
const rejectsPrefill = (_n: number, req: ReceivedRequest): Behaviour =>
  lastMessage(req)?.role === 'assistant' ? json({ error: { message: 'assistant prefill is not supported' } }, 400) : sse(wordsItems(WORDS));

function assertOneCleanStream(events: EngineEvent[]) {
  const chunks = events.flatMap((e) => (e.type === 'chunks' ? e.chunks : []));
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id');
  assert.equal(chunks.filter((c) => c.choices[0]?.delta.role === 'assistant').length, 1, 'one role chunk');
  assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).length, 1, 'one finish_reason');
  assert.equal(last(events).type, 'done');
}

describe('same-endpoint retries', () => {
  it('waits out a short Retry-After and succeeds on the same endpoint', async () => {
    const times: number[] = [];
    const limited = await upstream((n) => {
      times.push(Date.now());
      return n === 1 ? json({ error: { message: 'slow down' } }, 429, { 'retry-after': '2' }) : json(completionBody('second time lucky'));
    });
    const g = group('g', [endpoint(limited.baseurl, { name: 'limited' })], { retry: retry({ attempts: 2 }) });
    const events = await runAll(newEngine(), g, chatRequest());
    const done = last(events);
    assert.ok(done.type === 'done' && done.summary.endpoint === 'limited');
    assert.equal(times.length, 2);
    assert.ok(times[1]! - times[0]! >= 1800, `waited ${times[1]! - times[0]!} ms`);
  });

  it('never hammers: persistent 429s without Retry-After are hit at most 4 times in 3 s', async () => {
    const times: number[] = [];
    const limited = await upstream(() => {
      times.push(Date.now());
      return json({ error: { message: 'nope' } }, 429);
    });
    const g = group('g', [endpoint(limited.baseurl, { name: 'limited' })], { retry: retry({ attempts: 10, baseMs: 20, maxMs: 100 }) });
    const end = last(await runAll(newEngine(), g, chatRequest()));
    assert.ok(end.type === 'failed' && end.status === 429);
    assert.ok(times.length <= 4, `${times.length} hits`);
    assert.ok(times.length >= 2, 'it did retry');
  });

  it('a 500 once, then healthy: answered by the same endpoint on retry', async () => {
    const flaky = await upstream((n) => (n === 1 ? json({ error: { message: 'oops' } }, 500) : json(completionBody('fine now'))));
    const other = await upstream(json(completionBody('from the other')));
    const g = group('g', [endpoint(flaky.baseurl, { name: 'flaky' }), endpoint(other.baseurl, { name: 'other' })], {
      retry: retry({ attempts: 1, baseMs: 20 }),
    });
    const events = await runAll(newEngine(), g, chatRequest());
    assert.deepEqual(starts(events), ['flaky', 'flaky']);
    const completion = events.find((e) => e.type === 'completion');
    assert.ok(completion?.type === 'completion' && completion.completion.choices[0]?.message.content === 'fine now');
    assert.equal(other.requests.length, 0);
  });

  it('a silent endpoint is tried once and then left', async () => {
    const silent = await upstream({ kind: 'hang' });
    const other = await upstream(json(completionBody('ok')));
    const g = group('g', [endpoint(silent.baseurl, { name: 'silent', timeoutMs: 300 }), endpoint(other.baseurl, { name: 'other' })], {
      retry: retry({ attempts: 3, on: ['timeout', 'server'] }),
    });
    const events = await runAll(newEngine(), g, chatRequest());
    assert.deepEqual(starts(events), ['silent', 'other']);
    assert.equal(silent.requests.length, 1);
  });
});

describe('mid-stream resume', () => {
  const cutAfter40 = () => sse(wordsItems(WORDS.slice(0, 40), false), { end: 'reset' });

  for (const [name, fallback] of [
    ['a prefill-capable fallback', prefillCapable],
    ['a fallback that rejects prefill', rejectsPrefill],
  ] as const) {
    it(`a stream cut after 40 of 60 words, with ${name}: the complete answer exactly once`, async () => {
      const cut = await upstream(cutAfter40());
      const rest = await upstream(fallback);
      const g = group('g', [endpoint(cut.baseurl, { name: 'cut' }), endpoint(rest.baseurl, { name: 'rest', prefill: true })]);
      const events = await runAll(newEngine(), g, chatRequest({ stream: true, stream_options: { include_usage: true } }));
      assert.equal(streamedContent(events), FULL);
      assertOneCleanStream(events);
      const resume = events.find((e) => e.type === 'resume');
      assert.ok(resume?.type === 'resume');
      assert.equal(resume.mode, name.includes('rejects') ? 'restart' : 'prefill');
      // A prefill holds back the last words, which the continuation must reproduce.
      const delivered = WORDS.slice(0, 40).join('').length;
      if (resume.mode === 'restart') assert.equal(resume.reusedChars, delivered);
      else assert.ok(resume.reusedChars < delivered - 12 && resume.reusedChars > delivered - 64, `${resume.reusedChars}`);
      const usage = events.flatMap((e) => (e.type === 'chunks' ? e.chunks.flatMap((c) => (c.usage ? [c.usage] : [])) : []));
      assert.equal(usage.length, 1, 'one usage chunk');
    });
  }

  it('a stream that stalls after 20 words is resumed within timeout + the fallback time', async () => {
    const stall = await upstream(sse(wordsItems(WORDS.slice(0, 20), false), { end: 'hang' }));
    const rest = await upstream(prefillCapable);
    const g = group('g', [endpoint(stall.baseurl, { name: 'stall', timeoutMs: 400 }), endpoint(rest.baseurl, { name: 'rest' })]);
    const started = Date.now();
    const events = await runAll(newEngine(), g, chatRequest({ stream: true }));
    assert.equal(streamedContent(events), FULL);
    assertOneCleanStream(events);
    assert.ok(Date.now() - started < 2000);
  });

  it('a malformed but repairable 10th chunk is recovered in place', async () => {
    const items = wordsItems(WORDS);
    const tenth = JSON.stringify((items[10] as { data: unknown }).data);
    items[10] = { raw: `data: ${tenth.replace(/"/g, "'").replace(/}$/, ',}')}\n\n` };
    const up = await upstream(sse(items));
    const other = await upstream(prefillCapable);
    const g = group('g', [endpoint(up.baseurl, { name: 'one' }), endpoint(other.baseurl, { name: 'other' })]);
    const events = await runAll(newEngine(), g, chatRequest({ stream: true }));
    assert.equal(streamedContent(events), FULL);
    assert.deepEqual(starts(events), ['one'], 'no failover was needed');
  });

  it('a divergent restart ends with the in-band error and sends no contradicting text', async () => {
    const cut = await upstream(cutAfter40());
    const other = await upstream(sse(wordsItems(['Something', ' else', ' entirely'])));
    const g = group('g', [endpoint(cut.baseurl, { name: 'cut' }), endpoint(other.baseurl, { name: 'other', prefill: false })]);
    const events = await runAll(newEngine(), g, chatRequest({ stream: true }));
    const end = last(events);
    assert.equal(end.type, 'interrupted');
    assert.ok(end.type === 'interrupted' && end.error.error.code === 'stream_interrupted');
    assert.equal(streamedContent(events), WORDS.slice(0, 40).join(''));
  });

  it('an interrupted tool call is never resumed', async () => {
    const cut = await upstream(sse([chunk({ tool_calls: [{ index: 0, id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a"' } }] })], { end: 'reset' }));
    const other = await upstream(prefillCapable);
    const g = group('g', [endpoint(cut.baseurl, { name: 'cut' }), endpoint(other.baseurl, { name: 'other' })]);
    const events = await runAll(newEngine(), g, chatRequest({ stream: true }));
    assert.equal(last(events).type, 'interrupted');
    assert.equal(other.requests.length, 0);
  });

  it('with resume: false the stream ends with the in-band error (SPEC §3.4)', async () => {
    const cut = await upstream(cutAfter40());
    const other = await upstream(prefillCapable);
    const g = group('g', [endpoint(cut.baseurl, { name: 'cut' }), endpoint(other.baseurl, { name: 'other' })], { resume: false });
    assert.equal(last(await runAll(newEngine(), g, chatRequest({ stream: true }))).type, 'interrupted');
    assert.equal(other.requests.length, 0);
  });
});

describe('cooldown recovery under steady traffic', () => {
  it('a primary down for 6 s: every request served, traffic back on it within 3 s of recovery', async () => {
    const downUntil = Date.now() + 6000;
    const primary = await upstream(() => (Date.now() < downUntil ? json({ error: { message: 'down' } }, 503) : json(completionBody('primary'))));
    const backup = await upstream(json(completionBody('backup')));
    const g: Group = group('g', [endpoint(primary.baseurl, { name: 'primary' }), endpoint(backup.baseurl, { name: 'backup' })], {
      cooldown: { failures: 3, seconds: 2 },
    });
    const engine = newEngine();
    let backOnPrimary: number | null = null;
    while (Date.now() < downUntil + 4000) {
      const events = await runAll(engine, g, chatRequest());
      const done = last(events);
      assert.equal(done.type, 'done', 'every request served');
      if (done.type === 'done' && done.summary.endpoint === 'primary' && backOnPrimary === null && Date.now() >= downUntil) {
        backOnPrimary = Date.now();
      }
      await new Promise((r) => setTimeout(r, 400));
    }
    assert.ok(backOnPrimary !== null, 'traffic came back to the primary');
    assert.ok(backOnPrimary - downUntil <= 3000, `back after ${backOnPrimary - downUntil} ms`);
  });
});

describe('hedging and deadline', () => {
  it('hedge_ms: a late first token starts the next endpoint; the first to commit wins, the other is aborted', async () => {
    const slow = await upstream(sse([{ wait: 3000 }, ...wordsItems(['slow'])]));
    const fast = await upstream(sse(wordsItems(['fast'])));
    const g = group('g', [endpoint(slow.baseurl, { name: 'slow', timeoutMs: 10_000 }), endpoint(fast.baseurl, { name: 'fast' })], { hedgeMs: 300 });
    const started = Date.now();
    const events = await runAll(newEngine(), g, chatRequest({ stream: true }));
    const done = last(events);
    assert.ok(done.type === 'done' && done.summary.endpoint === 'fast');
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.ok(events.some((e) => e.type === 'attempt_abandoned' && e.endpoint === 'slow'));
    const deadline = Date.now() + 1000;
    while (slow.openSockets() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(slow.openSockets(), 0, 'the slow request was aborted');
  });

  it('a deadline of 2 s over three silent endpoints ends in about 2 s, naming the deadline', async () => {
    const silent = await upstream({ kind: 'hang' });
    const eps = ['a', 'b', 'c'].map((name) => endpoint(silent.baseurl, { name, model: name, timeoutMs: 5000 }));
    const started = Date.now();
    const end = last(await runAll(newEngine(), group('g', eps, { deadlineMs: 2000 }), chatRequest()));
    const took = Date.now() - started;
    assert.ok(took >= 1900 && took < 3000, `took ${took} ms`);
    assert.ok(end.type === 'failed');
    assert.equal(end.status, 504);
    assert.match(end.error.error.message, /deadline of 2 s/);
  });
});

describe('content filters', () => {
  const filtered = () => json({ error: { message: 'Your request was rejected by the safety system', type: 'invalid_request_error', code: 'content_policy_violation' } }, 400);

  it('a 400 naming a content policy is its own class and fails over by default', async () => {
    const strict = await upstream(filtered());
    const lenient = await upstream(json(completionBody('answered')));
    const g = group('g', [endpoint(strict.baseurl, { name: 'strict' }), endpoint(lenient.baseurl, { name: 'lenient' })]);
    const events = await runAll(newEngine(), g, chatRequest());
    const failedAttempt = events.find((e) => e.type === 'attempt_failed');
    assert.ok(failedAttempt?.type === 'attempt_failed' && failedAttempt.failure.class === 'content_filter');
    assert.equal(last(events).type, 'done');
  });

  it('failover_on_content_filter: false returns the provider reason as is', async () => {
    const strict = await upstream(filtered());
    const lenient = await upstream(json(completionBody('answered')));
    const g = group('g', [endpoint(strict.baseurl, { name: 'strict' }), endpoint(lenient.baseurl, { name: 'lenient' })], {
      failoverOnContentFilter: false,
    });
    const end = last(await runAll(newEngine(), g, chatRequest()));
    assert.ok(end.type === 'failed');
    assert.equal(end.status, 400);
    assert.equal(end.error.error.code, 'content_filter');
    assert.equal(end.error.error.message, 'Your request was rejected by the safety system');
    assert.equal(lenient.requests.length, 0);
  });

  it("finish_reason 'content_filter' before any token fails over, or is the answer when failover is off", async () => {
    const stopped = await upstream(sse([chunk({ role: 'assistant', content: '' }), chunk({}, 'content_filter')]));
    const lenient = await upstream(sse(wordsItems(['fine'])));
    const eps = [endpoint(stopped.baseurl, { name: 'stopped' }), endpoint(lenient.baseurl, { name: 'lenient' })];
    const over = await runAll(newEngine(), group('g', eps), chatRequest({ stream: true }));
    assert.equal(streamedContent(over), 'fine');
    const asIs = await runAll(newEngine(), group('g', eps, { failoverOnContentFilter: false }), chatRequest({ stream: true }));
    const done = last(asIs);
    assert.ok(done.type === 'done' && done.finishReason === 'content_filter' && done.summary.endpoint === 'stopped');
  });
});
