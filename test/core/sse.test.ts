import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseDecoder } from '../../src/core/sse.js';
import type { SseEvent } from '../../src/core/sse.js';

const enc = new TextEncoder();

function decodeWhole(bytes: Uint8Array): SseEvent[] {
  const d = new SseDecoder();
  return [...d.push(bytes), ...d.end()];
}

function decodeSplit(bytes: Uint8Array, cuts: number[]): SseEvent[] {
  const d = new SseDecoder();
  const out: SseEvent[] = [];
  let from = 0;
  for (const cut of cuts) {
    out.push(...d.push(bytes.subarray(from, cut)));
    from = cut;
  }
  out.push(...d.push(bytes.subarray(from)), ...d.end());
  return out;
}

const STREAM =
  ': OPENROUTER PROCESSING\r\n\r\n' +
  'data: {"a":"héllo 🌍"}\r\n\r\n' +
  'event: message\nid: 7\nretry: 100\ndata: first\ndata:second\n\n' +
  'data: {"b":"ü"}\r\r' +
  ':keep-alive\n' +
  '{"error": "Unhandled exception during response stream: boom"}\n' +
  'data: [DONE]\n\n' +
  'data: tail-without-blank';

const EXPECTED: SseEvent[] = [
  { kind: 'comment', text: 'OPENROUTER PROCESSING' },
  { kind: 'data', data: '{"a":"héllo 🌍"}' },
  { kind: 'data', data: 'first\nsecond' },
  { kind: 'data', data: '{"b":"ü"}' },
  { kind: 'comment', text: 'keep-alive' },
  { kind: 'bare', line: '{"error": "Unhandled exception during response stream: boom"}' },
  { kind: 'data', data: '[DONE]' },
  { kind: 'data', data: 'tail-without-blank' },
];

test('decodes a mixed stream in one push', () => {
  assert.deepEqual(decodeWhole(enc.encode(STREAM)), EXPECTED);
});

test('every single split position decodes to the same events', () => {
  const bytes = enc.encode(STREAM);
  for (let cut = 0; cut <= bytes.length; cut++) {
    assert.deepEqual(decodeSplit(bytes, [cut]), EXPECTED, `cut at ${cut}`);
  }
});

test('every pair of split positions decodes to the same events', () => {
  const bytes = enc.encode('data: 🌍é\r\n\r\ndata: x\r\rdata: y\n\n');
  const expected: SseEvent[] = [
    { kind: 'data', data: '🌍é' },
    { kind: 'data', data: 'x' },
    { kind: 'data', data: 'y' },
  ];
  for (let a = 0; a <= bytes.length; a++) {
    for (let b = a; b <= bytes.length; b++) {
      assert.deepEqual(decodeSplit(bytes, [a, b]), expected, `cuts at ${a}, ${b}`);
    }
  }
});

test('byte-by-byte decoding, including inside multi-byte characters', () => {
  const bytes = enc.encode(STREAM);
  const cuts = Array.from({ length: bytes.length }, (_, i) => i);
  assert.deepEqual(decodeSplit(bytes, cuts), EXPECTED);
});

test('CR at the end of a push followed by LF is one line ending', () => {
  const d = new SseDecoder();
  assert.deepEqual(d.push(enc.encode('data: a\r')), []);
  assert.deepEqual(d.push(enc.encode('\n\r')), [{ kind: 'data', data: 'a' }]);
  assert.deepEqual(d.push(enc.encode('\ndata: b\n\n')), [{ kind: 'data', data: 'b' }]);
  assert.deepEqual(d.end(), []);
});

test('data field details: optional space, no colon, empty data, unknown fields', () => {
  const events = decodeWhole(enc.encode('data:  two spaces\n\ndata\n\ndata:\n\nfoo: bar\nnot-json line\n\n'));
  assert.deepEqual(events, [
    { kind: 'data', data: ' two spaces' },
    { kind: 'data', data: '' },
    { kind: 'data', data: '' },
  ]);
});

test('event: error still dispatches its data', () => {
  const events = decodeWhole(enc.encode('event: error\ndata: {"error":{"message":"x"}}\n\n'));
  assert.deepEqual(events, [{ kind: 'data', data: '{"error":{"message":"x"}}' }]);
});

test('bare JSON array line and bare line in the middle of an event', () => {
  const events = decodeWhole(enc.encode('data: a\n[{"error":{"code":400}}]\ndata: b\n\n'));
  assert.deepEqual(events, [
    { kind: 'bare', line: '[{"error":{"code":400}}]' },
    { kind: 'data', data: 'a\nb' },
  ]);
});

test('end() with nothing pending returns nothing', () => {
  const d = new SseDecoder();
  assert.deepEqual(d.push(enc.encode('data: x\n\n')), [{ kind: 'data', data: 'x' }]);
  assert.deepEqual(d.end(), []);
});

test('an incomplete UTF-8 sequence at the end becomes a replacement character', () => {
  const bytes = enc.encode('data: 🌍');
  const d = new SseDecoder();
  const out = [...d.push(bytes.subarray(0, bytes.length - 1)), ...d.end()];
  assert.deepEqual(out, [{ kind: 'data', data: '\uFFFD' }]);
});
