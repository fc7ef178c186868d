/**
 * Embeddings with the built CLI, the way users run it: `serve` on a YAML
 * profile of `kind: embeddings` (with `/status` and `/metrics` showing the
 * requests like chat ones), and `test-endpoints` checking the dimension.
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ProbeRow } from '../../src/probe/probe.js';
import type { StatusBody } from '../../src/server/status.js';
import { cliEnv, ROOT, runCli, startCli, waitForStdout } from '../helpers/cli.js';
import { embeddingsServer, vectorFor } from '../helpers/embeddings.js';
import { json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';

const built = existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'));
const KEY = 'sk-emb-secret-0123456789';

describe('embeddings through the built CLI', { skip: built ? false : 'run `npm run build` first' }, () => {
  const upstreams: FakeUpstream[] = [];
  const children: ChildProcessWithoutNullStreams[] = [];
  let dir = '';
  let down: FakeUpstream;

  before(async () => {
    const start = async (...args: Parameters<typeof startFakeUpstream>): Promise<FakeUpstream> => {
      const u = await startFakeUpstream(...args);
      upstreams.push(u);
      return u;
    };
    down = await start(json({ error: { message: 'overloaded' } }, 503));
    const good = await start(embeddingsServer('text-embedding-3-small'));
    const wide = await start(embeddingsServer('text-embedding-3-small', { dims: 16 }));
    dir = await mkdtemp(path.join(tmpdir(), 'failproxy-emb-cli-'));
    const endpoint = (name: string, baseurl: string): string => `
  - name: ${name}
    baseurl: ${baseurl}
    apikey: "\${EMB_TEST_KEY}"
    model: text-embedding-3-small
    timeout: 5`;
    await writeFile(
      path.join(dir, 'rag.yaml'),
      `kind: embeddings\ndimensions: 8\nendpoints:${endpoint('down', down.baseurl)}${endpoint('good', good.baseurl)}\n`,
    );
    await writeFile(
      path.join(dir, 'wide.yaml'),
      `kind: embeddings\ndimensions: 8\nendpoints:${endpoint('wide', wide.baseurl)}\n`,
    );
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await Promise.all(upstreams.map((u) => u.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serve answers /v1/embeddings through a failover; /status and /metrics count it', async () => {
    const logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-emb-logs-'));
    const child = startCli(['serve', '--port', '0', '--profiles', dir, '--log-dir', logDir], {
      env: cliEnv({ EMB_TEST_KEY: KEY }),
    });
    children.push(child);
    const [, origin] = await waitForStdout(child, /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/);
    const client = new OpenAI({ baseURL: `${origin}/v1`, apiKey: 'unused', maxRetries: 0 });
    const result = await client.embeddings.create({ model: 'rag', input: ['hello', 'world'] });
    assert.deepEqual(
      result.data.map((d) => d.embedding),
      [vectorFor('text-embedding-3-small', 'hello'), vectorFor('text-embedding-3-small', 'world')],
    );
    assert.equal(down.requests.at(-1)?.headers.authorization, `Bearer ${KEY}`);

    const status = (await (await fetch(`${origin}/status`)).json()) as StatusBody;
    const rag = status.groups.find((g) => g.name === 'rag');
    assert.deepEqual(
      rag?.endpoints.map((e) => [e.name, e.consecutive_failures]),
      [
        ['down', 1],
        ['good', 0],
      ],
    );
    const metrics = await (await fetch(`${origin}/metrics`)).text();
    assert.match(metrics, /failproxy_requests_total\{[^}]*group="rag"[^}]*\} 1/);
    assert.match(metrics, /failproxy_attempts_total\{[^}]*endpoint="down"[^}]*\} 1/);
    const text = status.groups.map((g) => JSON.stringify(g)).join('') + metrics;
    assert.doesNotMatch(text, new RegExp(KEY));
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await rm(logDir, { recursive: true, force: true });
  });

  it('ask refuses an embeddings group with a usage error (exit 2)', async () => {
    const run = await runCli(['ask', '--profiles', dir, '-g', 'rag', 'hi'], { env: cliEnv({ EMB_TEST_KEY: KEY }) });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /group 'rag' is an embeddings group \(kind: embeddings\); ask needs a chat group/);
  });

  it('test-endpoints probes each embeddings endpoint with one word and checks the dimension', async () => {
    const run = await runCli(['test-endpoints', '--profiles', dir, '--json'], { env: cliEnv({ EMB_TEST_KEY: KEY }) });
    const rows = JSON.parse(run.stdout) as ProbeRow[];
    const byName = new Map(rows.map((r) => [r.endpoint, r]));
    assert.equal(byName.get('good')?.result, 'ok');
    assert.equal(byName.get('down')?.result, 'server');
    assert.equal(byName.get('down')?.status, 503);
    assert.equal(byName.get('wide')?.result, 'invalid_response');
    assert.match(byName.get('wide')?.reason ?? '', /16 dimensions, the group declares 8/);
    assert.deepEqual(down.requests.at(-1)?.body.input, ['hello']);
    // The group whose only endpoint answers the wrong length has no working endpoint.
    assert.equal(run.code, 1);
    assert.doesNotMatch(run.stdout + run.stderr, new RegExp(KEY));
  });
});
