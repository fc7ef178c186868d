/**
 * Property-based tests (fast-check) for the pure parts of the pipeline: the
 * SSE decoder, stream <-> completion conversion, `<think>` splitting, request
 * repair and failure classification. Each property runs a few hundred seeded
 * cases; a failure prints the seed and the shrunk counterexample.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  classifyStatus,
  classifyTransportError,
  failureFromErrorPayload,
  failureFromResponse,
  parseRetryAfter,
} from '../../src/core/classify.js';
import { CompletionAggregator, explodeCompletion } from '../../src/core/openai/convert.js';
import { StreamNormalizer, normalizeCompletion, type NormalizeOptions } from '../../src/core/openai/normalize.js';
import { ThinkSplitter, type Segment } from '../../src/core/openai/think.js';
import { SseDecoder, type SseEvent } from '../../src/core/sse.js';
import {
  FAILURE_CLASSES,
  type ChatCompletion,
  type ChatCompletionChunk,
  type Failure,
  type JsonObject,
  type ReasoningMode,
} from '../../src/core/types.js';
import { parseClientBody } from '../../src/server/repair.js';

const RUNS = { numRuns: 300, seed: 20240611 };

/** Cut `bytes` at the given (unsorted, possibly repeated) positions. */
function cutAt(bytes: Uint8Array, positions: number[]): Uint8Array[] {
  const cuts = [...new Set(positions.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const cut of cuts) {
    parts.push(bytes.subarray(from, cut));
    from = cut;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

/** Cut a string into pieces at the given positions. */
function cutText(text: string, positions: number[]): string[] {
  const cuts = [...new Set(positions.map((p) => p % (text.length + 1)))].sort((a, b) => a - b);
  const parts: string[] = [];
  let from = 0;
  for (const cut of cuts) {
    parts.push(text.slice(from, cut));
    from = cut;
  }
  parts.push(text.slice(from));
  return parts;
}

const cuts = fc.array(fc.nat(), { maxLength: 40 });

// ---------------------------------------------------------------------------
// SSE

/** Any text without line breaks; full Unicode, so multi-byte characters get split. */
const lineText = fc.string({ unit: 'binary', maxLength: 30 }).map((s) =>
  Buffer.from(s)
    .toString('utf8')
    .replace(/[\r\n]/g, ''),
);

type SseLine = { line: string; expect: SseEvent | 'data' | 'blank' | null; value?: string };

const sseLine: fc.Arbitrary<SseLine> = fc.oneof(
  // One space after the colon is part of the syntax, not of the value.
  lineText.map((v) => ({ line: `data: ${v}`, expect: 'data' as const, value: v })),
  lineText.map((v) => ({ line: `data:${v}`, expect: 'data' as const, value: v.startsWith(' ') ? v.slice(1) : v })),
  fc.constant<SseLine>({ line: 'data', expect: 'data', value: '' }),
  fc.constant<SseLine>({ line: '', expect: 'blank' }),
  lineText.map((t) => ({ line: `:${t}`, expect: { kind: 'comment' as const, text: t.trim() } })),
  lineText.map((t) => ({
    line: `{"error":${JSON.stringify(t)}}`,
    expect: { kind: 'bare' as const, line: `{"error":${JSON.stringify(t)}}` },
  })),
  fc.constantFrom('event: error', 'id: 7', 'retry: 100', 'x-unknown: y', 'foo').map((line) => ({ line, expect: null })),
);

/** A stream of lines with mixed terminators, and the events a correct decoder yields. */
const sseStream = fc.array(fc.tuple(sseLine, fc.constantFrom('\n', '\r\n', '\r')), { maxLength: 25 }).map((lines) => {
  let text = '';
  const events: SseEvent[] = [];
  let data: string | null = null;
  let previous = '';
  for (const [l, eol] of lines) {
    // CR then LF would be one terminator, swallowing the blank line.
    const end = previous === '\r' && l.line === '' && eol === '\n' ? '\r\n' : eol;
    text += l.line + end;
    previous = end;
    if (l.expect === 'data') data = data === null ? l.value! : `${data}\n${l.value!}`;
    else if (l.expect === 'blank') {
      if (data !== null) events.push({ kind: 'data', data });
      data = null;
    } else if (l.expect !== null) events.push(l.expect);
  }
  if (data !== null) events.push({ kind: 'data', data });
  return { bytes: new TextEncoder().encode(text), events };
});

function decodeParts(parts: Uint8Array[]): SseEvent[] {
  const decoder = new SseDecoder();
  const events: SseEvent[] = [];
  for (const part of parts) events.push(...decoder.push(part));
  events.push(...decoder.end());
  return events;
}

describe('SseDecoder', () => {
  it('decodes any split of a valid stream to the same events', () => {
    fc.assert(
      fc.property(sseStream, cuts, ({ bytes, events }, positions) => {
        assert.deepEqual(decodeParts([bytes]), events);
        assert.deepEqual(decodeParts(cutAt(bytes, positions)), events);
      }),
      RUNS,
    );
  });

  it('is split-invariant on arbitrary bytes too', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), cuts, (bytes, positions) => {
        assert.deepEqual(decodeParts(cutAt(bytes, positions)), decodeParts([bytes]));
      }),
      RUNS,
    );
  });

  it('survives byte-by-byte delivery', () => {
    fc.assert(
      fc.property(sseStream, ({ bytes, events }) => {
        assert.deepEqual(decodeParts([...bytes].map((b) => Uint8Array.of(b))), events);
      }),
      { ...RUNS, numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------------------
// Conversion

function opts(over: Partial<NormalizeOptions> = {}): NormalizeOptions {
  return {
    reasoning: 'field',
    thinkOpen: false,
    includeUsage: true,
    fallbackId: 'chatcmpl-fallback',
    fallbackCreated: 111,
    fallbackModel: 'fallback-model',
    ...over,
  };
}

function aggregate(chunks: ChatCompletionChunk[]): ChatCompletion {
  const a = new CompletionAggregator();
  for (const c of chunks) a.add(c);
  return a.result();
}

const text = fc.string({ maxLength: 20 });
const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });
const jsonish = fc.jsonValue({ maxDepth: 2 });

/** Raw upstream `chat.completion` bodies in the shapes upstreams really send, plus noise. */
const rawCompletion: fc.Arbitrary<JsonObject> = fc
  .record({
    id: maybe(fc.oneof(text, fc.constant(''))),
    created: maybe(fc.integer({ min: 0, max: 2e9 })),
    model: maybe(text),
    content: fc.oneof(
      text,
      fc.constant(null),
      fc.array(fc.record({ type: fc.constant('text'), text }), { maxLength: 3 }),
    ),
    reasoning_content: maybe(text),
    reasoning: maybe(text),
    reasoning_details: maybe(
      fc.array(
        fc.oneof(
          fc.record({ type: fc.constant('reasoning.text'), text }),
          fc.record({ type: fc.constant('reasoning.encrypted'), data: text }),
        ),
        { maxLength: 3 },
      ),
    ),
    refusal: maybe(fc.oneof(text, fc.constant(null))),
    tool_calls: maybe(
      fc.array(
        fc.record({
          id: maybe(fc.oneof(text, fc.constant(''))),
          type: fc.constant('function'),
          function: fc.record({
            name: maybe(text),
            arguments: maybe(fc.oneof(text, fc.dictionary(text, jsonish, { maxKeys: 2 }))),
          }),
        }),
        { maxLength: 3 },
      ),
    ),
    extras: fc.dictionary(fc.constantFrom('annotations', 'audio', 'function_call', 'name', 'x_custom'), jsonish, {
      maxKeys: 2,
    }),
    finish_reason: maybe(fc.constantFrom('stop', 'length', 'tool_calls', 'content_filter', 'eos', 'end_turn')),
    logprobs: maybe(
      fc.oneof(
        fc.constant(null),
        fc.record({
          content: fc.array(fc.record({ token: text, logprob: fc.double({ noNaN: true, noDefaultInfinity: true }) }), {
            maxLength: 2,
          }),
        }),
      ),
    ),
    usage: maybe(fc.record({ prompt_tokens: fc.nat(), completion_tokens: fc.nat(), total_tokens: fc.nat() })),
  })
  .map((r) => {
    const message: JsonObject = { role: 'assistant', content: r.content, ...r.extras };
    for (const key of ['reasoning_content', 'reasoning', 'reasoning_details', 'refusal', 'tool_calls'] as const) {
      if (r[key] !== undefined) message[key] = r[key];
    }
    const choice: JsonObject = { index: 0, message };
    if (r.finish_reason !== undefined) choice.finish_reason = r.finish_reason;
    if (r.logprobs !== undefined) choice.logprobs = r.logprobs;
    const raw: JsonObject = { object: 'chat.completion', choices: [choice] };
    for (const key of ['id', 'created', 'model', 'usage'] as const) if (r[key] !== undefined) raw[key] = r[key];
    // Through the wire, as the engine sees it (plain prototypes, no -0).
    return JSON.parse(JSON.stringify(raw)) as JsonObject;
  });

const reasoningMode = fc.constantFrom<ReasoningMode>('field', 'tags', 'strip');

describe('CompletionAggregator / explodeCompletion', () => {
  it('aggregate(explode(c)) gives c back for every normalized completion', () => {
    fc.assert(
      fc.property(rawCompletion, reasoningMode, (raw, reasoning) => {
        const completion = normalizeCompletion(raw, opts({ reasoning }));
        assert.ok(completion, 'a body with choices[0].message normalizes');
        assert.deepEqual(aggregate(explodeCompletion(completion, { includeUsage: true })), completion);
      }),
      RUNS,
    );
  });

  it('explode(aggregate(chunks)) gives the exploded chunks back', () => {
    fc.assert(
      fc.property(rawCompletion, fc.boolean(), (raw, includeUsage) => {
        const completion = normalizeCompletion(raw, opts())!;
        const chunks = explodeCompletion(completion, { includeUsage });
        assert.deepEqual(explodeCompletion(aggregate(chunks), { includeUsage }), chunks);
      }),
      RUNS,
    );
  });

  it('a normalized stream aggregates to what its explosion aggregates to', () => {
    fc.assert(
      fc.property(rawCompletion, cuts, (raw, positions) => {
        // Stream the completion's text and tool calls as an upstream would, in arbitrary pieces.
        const completion = normalizeCompletion(raw, opts())!;
        const message = completion.choices[0]!.message;
        const upstream: JsonObject[] = [];
        const piece = (delta: JsonObject): void =>
          void upstream.push({ id: 'up', created: 5, model: 'm', choices: [{ index: 0, delta, finish_reason: null }] });
        for (const r of cutText(message.reasoning_content ?? '', positions))
          if (r !== '') piece({ reasoning_content: r });
        for (const c of cutText(message.content ?? '', positions)) if (c !== '') piece({ content: c });
        (message.tool_calls ?? []).forEach((tc, index) => {
          piece({
            tool_calls: [{ index, id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } }],
          });
          for (const a of cutText(tc.function.arguments, positions))
            if (a !== '') piece({ tool_calls: [{ index, function: { arguments: a } }] });
        });
        upstream.push({
          id: 'up',
          created: 5,
          model: 'm',
          choices: [{ index: 0, delta: {}, finish_reason: completion.choices[0]!.finish_reason }],
        });
        const normalizer = new StreamNormalizer(opts());
        const out: ChatCompletionChunk[] = [];
        for (const u of upstream) out.push(...normalizer.push(u));
        out.push(...normalizer.end());
        const streamed = aggregate(out);
        assert.deepEqual(aggregate(explodeCompletion(streamed, { includeUsage: true })), streamed);
        const m = streamed.choices[0]!.message;
        assert.equal(m.content, message.content);
        assert.equal(m.reasoning_content, message.reasoning_content);
        assert.deepEqual(
          (m.tool_calls ?? []).map((t) => t.function),
          (message.tool_calls ?? []).map((t) => t.function),
        );
      }),
      RUNS,
    );
  });
});

// ---------------------------------------------------------------------------
// <think>

/** Text from an alphabet dense in tag characters, so cuts land inside tags often. */
const tagText = (maxLength: number): fc.Arbitrary<string> =>
  fc
    .array(
      fc.constantFrom(
        '<',
        '>',
        '/',
        't',
        'h',
        'i',
        'n',
        'k',
        ' ',
        '\n',
        'a',
        'é',
        '😀',
        '<think>',
        '</think>',
        '</thi',
      ),
      { maxLength },
    )
    .map((parts) => parts.join(''));

function merge(segments: Segment[]): Segment[] {
  const merged: Segment[] = [];
  for (const seg of segments) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.kind === seg.kind) last.text += seg.text;
    else merged.push({ ...seg });
  }
  return merged;
}

function split(pieces: string[], startInside: boolean): Segment[] {
  const splitter = new ThinkSplitter({ startInside });
  const out: Segment[] = [];
  for (const piece of pieces) out.push(...splitter.push(piece));
  out.push(...splitter.end());
  return merge(out);
}

/** Well-formed reasoning/content: no tag inside reasoning, no leading space where the splitter trims. */
const thinkParts = fc
  .record({
    lead: fc.constantFrom('', ' ', '\n\n'),
    reasoning: tagText(12).filter((r) => !r.includes('</think>') && !/^\s*<think>/.test(r) && r.trimStart() === r),
    gap: fc.constantFrom('', '\n', '\n\n '),
    content: tagText(12).map((c) => c.trimStart()),
    opening: fc.boolean(),
  })
  // Without the opening tag, a `<think>` inside the reasoning reads as quoted text in a complete body.
  .filter((p) => p.opening || !p.reasoning.includes('<think>'));

function streamThink(
  pieces: string[],
  reasoning: ReasoningMode,
  thinkOpen: boolean,
): { reasoning: string; content: string } {
  const normalizer = new StreamNormalizer(opts({ reasoning, thinkOpen }));
  const out: ChatCompletionChunk[] = [];
  for (const piece of pieces)
    out.push(...normalizer.push({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] }));
  out.push(...normalizer.push({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
  out.push(...normalizer.end());
  let r = '';
  let c = '';
  for (const chunk of out) {
    const delta = chunk.choices[0]?.delta;
    if (!delta) continue;
    assert.ok(
      !(typeof delta.content === 'string' && delta.reasoning_content !== undefined),
      'reasoning and content never share a delta',
    );
    r += delta.reasoning_content ?? '';
    c += delta.content ?? '';
  }
  return { reasoning: r, content: c };
}

describe('<think> splitting', () => {
  it('ThinkSplitter: any chunking gives the same segments as one push', () => {
    fc.assert(
      fc.property(tagText(30), fc.boolean(), cuts, (whole, startInside, positions) => {
        assert.deepEqual(split(cutText(whole, positions), startInside), split([whole], startInside));
      }),
      RUNS,
    );
  });

  it('ThinkSplitter: a well-formed think block splits into its reasoning and content', () => {
    fc.assert(
      fc.property(thinkParts, cuts, (p, positions) => {
        const whole = `${p.lead}${p.opening ? '<think>' : ''}${p.reasoning}</think>${p.gap}${p.content}`;
        const expected = merge(
          [
            { kind: 'reasoning', text: p.reasoning },
            { kind: 'content', text: p.content },
          ].filter((s) => s.text !== '') as Segment[],
        );
        // Without the opening tag only an endpoint known to open it in the prompt splits.
        assert.deepEqual(split(cutText(whole, positions), !p.opening), expected);
      }),
      RUNS,
    );
  });

  it('StreamNormalizer: any chunking gives the same reasoning and content, in every mode, as the non-streamed body', () => {
    fc.assert(
      fc.property(thinkParts, reasoningMode, cuts, (p, mode, positions) => {
        const whole = `${p.lead}${p.opening ? '<think>' : ''}${p.reasoning}</think>${p.gap}${p.content}`;
        const thinkOpen = !p.opening;
        const streamed = streamThink(cutText(whole, positions), mode, thinkOpen);
        assert.deepEqual(streamed, streamThink([whole], mode, thinkOpen));
        const expected =
          mode === 'field'
            ? { reasoning: p.reasoning, content: p.content }
            : mode === 'tags'
              ? {
                  reasoning: '',
                  content: p.reasoning === '' ? p.content : `<think>${p.reasoning}</think>\n\n${p.content}`,
                }
              : { reasoning: '', content: p.content };
        assert.deepEqual(streamed, expected);
        const body = normalizeCompletion(
          { choices: [{ index: 0, message: { role: 'assistant', content: whole } }] },
          opts({ reasoning: mode }),
        )!;
        const m = body.choices[0]!.message;
        assert.deepEqual({ reasoning: m.reasoning_content ?? '', content: m.content ?? '' }, expected);
      }),
      RUNS,
    );
  });
});

// ---------------------------------------------------------------------------
// Request repair

function assertAccepted(result: ReturnType<typeof parseClientBody>): void {
  if (!result.ok) {
    assert.equal(typeof result.message, 'string');
    return;
  }
  const r = result.request as unknown;
  assert.ok(r !== null && typeof r === 'object' && !Array.isArray(r), 'accepted requests are objects');
  assert.equal(typeof result.request.model, 'string');
  assert.ok(Array.isArray(result.request.messages) && result.request.messages.length > 0);
  for (const m of result.request.messages) assert.equal(typeof m.role, 'string');
  if ('stream' in result.request) assert.equal(typeof result.request.stream, 'boolean');
}

const route = fc.constantFrom('chat' as const, 'completions' as const);

describe('parseClientBody', () => {
  it('never throws on arbitrary bytes and accepts only well-formed requests', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), route, maybe(fc.nat(400)), (bytes, r, declared) => {
        assertAccepted(parseClientBody(Buffer.from(bytes), r, declared));
      }),
      RUNS,
    );
  });

  it('never throws on arbitrary text (jsonrepair fodder)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), route, (s, r) => {
        assertAccepted(parseClientBody(Buffer.from(s), r));
      }),
      RUNS,
    );
  });

  it('never accepts a JSON value that is not an object', () => {
    const nonObject = fc.oneof(
      fc.jsonValue().filter((v) => v === null || typeof v !== 'object' || Array.isArray(v)),
      fc.array(fc.jsonValue()),
    );
    fc.assert(
      fc.property(nonObject, route, (v, r) => {
        assert.equal(parseClientBody(Buffer.from(JSON.stringify(v)), r).ok, false);
      }),
      RUNS,
    );
  });

  it('validates wrong types for every field without throwing', () => {
    const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(undefined));
    const request = fc.record(
      {
        model: anyValue,
        messages: anyValue,
        prompt: anyValue,
        stream: anyValue,
        stream_options: anyValue,
        temperature: anyValue,
        tools: anyValue,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(request, route, fc.constantFrom('json', 'trailing-comma', 'single-quotes'), (body, r, form) => {
        let text = JSON.stringify(body);
        if (form === 'trailing-comma') text = text.replace(/}$/, ',}');
        if (form === 'single-quotes') text = text.replace(/"model"/, "'model'");
        assertAccepted(parseClientBody(Buffer.from(text), r));
      }),
      RUNS,
    );
  });

  it('rejects (and never throws on) absurdly nested bodies', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1_000, max: 200_000 }), fc.constantFrom('[', '{"a":'), route, (depth, open, r) => {
        const close = open === '[' ? ']' : '}';
        const nested = open.repeat(depth) + '1' + close.repeat(depth);
        const body = `{"model":"g","messages":[{"role":"user","content":${nested}}]}`;
        const result = parseClientBody(Buffer.from(body), r);
        assert.equal(result.ok, false);
      }),
      { ...RUNS, numRuns: 20 },
    );
  });
});

// ---------------------------------------------------------------------------
// Classification

const CLASSES: ReadonlySet<string> = new Set(FAILURE_CLASSES);

function assertFailure(f: Failure): void {
  assert.ok(CLASSES.has(f.class), `unknown class ${f.class}`);
  assert.equal(typeof f.message, 'string');
  assert.ok(f.message.length <= 2000);
}

describe('classification is total', () => {
  it('every status 100..599 has a class', () => {
    for (let status = 100; status <= 599; status++) assert.ok(CLASSES.has(classifyStatus(status)), String(status));
  });

  it('every status with any body and content type gives a failure', () => {
    const body = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.constantFrom(
        '<html><title>502 Bad Gateway</title></html>',
        '<!DOCTYPE html><h1>Error 524</h1>',
        '',
        '{"error":',
        '[]',
        '[{"error":{"message":"x"}}]',
      ),
    );
    const contentType = fc.option(fc.constantFrom('application/json', 'text/html; charset=utf-8', 'text/plain', ''), {
      nil: undefined,
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 599 }),
        contentType,
        body,
        maybe(fc.nat()),
        (status, type, text, retry) => {
          const f = failureFromResponse(status, type, text, retry);
          assertFailure(f);
          assert.equal(f.status, status);
        },
      ),
      RUNS,
    );
  });

  it('any JSON object gives null or a failure', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('error', 'detail', 'message', 'code', 'choices', 'x'),
          fc.jsonValue({ maxDepth: 4 }),
        ),
        (obj) => {
          const f = failureFromErrorPayload(obj);
          if (f !== null) assertFailure(f);
        },
      ),
      RUNS,
    );
  });

  it('any thrown value gives network or timeout', () => {
    const errorLike: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      err: fc.oneof(
        { depthSize: 'small' },
        fc.anything({ withNullPrototype: true, withBigInt: true, withMap: true, withSet: true }),
        fc.record(
          {
            code: fc.oneof(
              fc.constantFrom('ECONNREFUSED', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT'),
              fc.anything(),
            ),
            cause: tie('err'),
          },
          { requiredKeys: [] },
        ),
        fc
          .tuple(fc.string(), maybe(fc.string()), tie('err'))
          .map(([message, code, cause]) =>
            Object.assign(new Error(message, { cause }), code === undefined ? {} : { code }),
          ),
      ),
    })).err;
    fc.assert(
      fc.property(errorLike, (err) => {
        const f = classifyTransportError(err);
        assert.ok(f.class === 'network' || f.class === 'timeout', f.class);
        assert.equal(typeof f.message, 'string');
      }),
      RUNS,
    );
  });

  it('Retry-After parsing never throws and is never negative', () => {
    fc.assert(
      fc.property(maybe(fc.string()), maybe(fc.string()), (a, b) => {
        const ms = parseRetryAfter(a, b);
        assert.ok(ms === undefined || (Number.isFinite(ms) && ms >= 0), String(ms));
      }),
      RUNS,
    );
  });
});
