/** Build normalized groups and endpoints for tests that drive the engine directly. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FailoverEngine } from '../../src/core/engine.js';
import type { ChatRequest, Endpoint, EngineEvent, Group } from '../../src/core/types.js';

export function endpoint(baseurl: string, overrides: Partial<Endpoint> = {}): Endpoint {
  const name = overrides.name ?? `ep-${baseurl.split(':').at(-1)?.split('/')[0] ?? 'x'}`;
  return {
    name,
    type: 'openai',
    baseurl,
    apikey: 'sk-test-0123456789abcdef',
    model: 'test-model',
    timeoutMs: 2000,
    headers: {},
    params: {},
    ...overrides,
  };
}

export function group(name: string, endpoints: Endpoint[], overrides: Partial<Group> = {}): Group {
  return {
    name,
    source: `${name}.yaml`,
    endpoints,
    skipped: [],
    reasoning: 'field',
    cooldown: { failures: 3, seconds: 30 },
    ...overrides,
  };
}

export function chatRequest(overrides: Partial<ChatRequest> = {}): ChatRequest {
  return { model: 'g', messages: [{ role: 'user', content: 'hi' }], ...overrides };
}

let counter = 0;

/** Run one request to the end and return every event. */
export async function runAll(
  engine: FailoverEngine,
  g: Group,
  body: ChatRequest,
  signal?: AbortSignal,
): Promise<EngineEvent[]> {
  const events: EngineEvent[] = [];
  const request = { requestId: `req-${++counter}`, group: g, body, ...(signal ? { signal } : {}) };
  for await (const event of engine.run(request)) events.push(event);
  return events;
}

/** The streamed text of a run (content deltas joined). */
export function streamedContent(events: EngineEvent[]): string {
  let text = '';
  for (const e of events) {
    if (e.type === 'chunks') for (const c of e.chunks) text += c.choices[0]?.delta.content ?? '';
  }
  return text;
}

export function streamedReasoning(events: EngineEvent[]): string {
  let text = '';
  for (const e of events) {
    if (e.type === 'chunks') for (const c of e.chunks) text += c.choices[0]?.delta.reasoning_content ?? '';
  }
  return text;
}

export function last(events: EngineEvent[]): EngineEvent {
  const e = events.at(-1);
  if (!e) throw new Error('no events');
  return e;
}

/** A loopback port nobody listens on (connection refused). */
export async function refusedBaseurl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}/v1`;
}
