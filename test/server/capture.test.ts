/** The capture directory stays bounded: a body over the cap is left out, the oldest files go first. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { RequestContext } from '../../src/core/observe.js';
import type { EngineEvent } from '../../src/core/types.js';
import { CaptureObserver, captureFile, readCapture } from '../../src/server/capture.js';

function failedRequest(observer: CaptureObserver, id: string, content: string): void {
  const body = { model: 'g', messages: [{ role: 'user', content }] };
  const context: RequestContext = {
    requestId: id,
    group: 'g',
    stream: false,
    source: 'serve',
    repaired: false,
    messages: body.messages,
    body,
  };
  const events: EngineEvent[] = [
    { type: 'attempt_start', n: 1, endpoint: 'a', model: 'm', cooling: false },
    {
      type: 'attempt_failed',
      n: 1,
      endpoint: 'a',
      failure: { class: 'server', status: 503, message: 'down' },
      ms: 5,
      afterCommit: false,
    },
    {
      type: 'failed',
      summary: {
        requestId: id,
        group: 'g',
        stream: false,
        endpoint: null,
        attempts: [{ endpoint: 'a', class: 'server', status: 503, message: 'down', ms: 5 }],
        ms: 6,
        ttftMs: null,
        usage: null,
      },
      status: 502,
      headers: {},
      error: { error: { message: 'all failed', type: 'failproxy_error', param: null, code: 'all_endpoints_failed' } },
    },
  ];
  for (const e of events) observer.onEvent(context, e);
}

test('keeps at most maxFiles captures, oldest deleted first, and drops bodies over maxBytes', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'failproxy-capture-'));
  const observer = new CaptureObserver({ dir, maxFiles: 2, maxBytes: 2000 });
  failedRequest(observer, 'r1', 'one');
  failedRequest(observer, 'r2', 'two');
  failedRequest(observer, 'r3', 'x'.repeat(5000));
  await observer.flush();
  assert.deepEqual((await readdir(dir)).sort(), ['r2.json', 'r3.json']);
  const big = await readCapture(dir, 'r3');
  assert.equal(big?.request, null);
  assert.ok((big?.too_large_bytes ?? 0) > 5000);
  assert.equal(big?.original.outcome, 'failed');
  assert.ok((await readFile(path.join(dir, 'r3.json'))).length < 2000);
  assert.equal((await readCapture(dir, 'r2'))?.request?.messages[0]?.content, 'two');
});

test('a request id cannot name a file outside the capture directory', () => {
  assert.equal(captureFile('/c', '../../etc/passwd'), null);
  assert.equal(captureFile('/c', 'abc-123'), path.join('/c', 'abc-123.json'));
});
