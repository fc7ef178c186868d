/**
 * The dashboard in a real browser (Debian's chromium through playwright-core)
 * against `failproxy serve` spawned as users start it: the page works with
 * every name lookup but loopback failing (offline), asks for the key, shows
 * every group and an endpoint cooling after failures, and a new request's
 * failover chain appears in the live feed within 2 s. The screenshot is saved
 * under test-artifacts/ (and as docs/dashboard.png with FAILPROXY_UPDATE_DOCS=1).
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { browserTestOptions, launchBrowser, type BrowserSession } from '../helpers/browser.js';
import { ROOT, collect, startCli, waitForStdout } from '../helpers/cli.js';
import {
  chunk,
  completionBody,
  json,
  sse,
  startFakeUpstream,
  usageChunk,
  type FakeUpstream,
} from '../helpers/fake-upstream.js';

const KEY = 'dashboard-key-0123';
const ARTIFACTS = process.env.FAILPROXY_ARTIFACTS ?? path.join(ROOT, 'test-artifacts');

const cleanups: Array<() => Promise<unknown> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function upstream(...args: Parameters<typeof startFakeUpstream>): Promise<FakeUpstream> {
  const u = await startFakeUpstream(...args);
  cleanups.push(() => u.close());
  return u;
}

async function startServe(): Promise<{ origin: string; server: ChildProcessWithoutNullStreams }> {
  const flaky = await upstream(json({ error: { message: 'upstream overloaded, try again later' } }, 503));
  const backup = await upstream(
    json(
      completionBody('hello', {
        usage: {
          prompt_tokens: 1200,
          completion_tokens: 340,
          total_tokens: 1540,
          prompt_tokens_details: { cached_tokens: 1024 },
        },
      }),
    ),
  );
  const limited = await upstream(
    json({ error: { message: 'Rate limit exceeded: free-models-per-min' } }, 429, { 'retry-after': '45' }),
  );
  const streamer = await upstream(
    sse(
      [
        chunk({ role: 'assistant', reasoning_content: 'thinking' }),
        chunk({ content: 'answer' }),
        chunk({}, 'stop'),
        usageChunk({ prompt_tokens: 800, completion_tokens: 2100, total_tokens: 2900, cost: 0.0042 } as never),
      ],
      { gapMs: 5 },
    ),
  );
  const local = await upstream(json(completionBody('local answer')));
  const profiles = await mkdtemp(path.join(tmpdir(), 'failproxy-dashboard-profiles-'));
  const ep = (name: string, u: FakeUpstream, extra = ''): string =>
    `  - name: ${name}\n    baseurl: ${u.baseurl}\n    apikey: ""\n    model: ${name}-model\n${extra}`;
  await writeFile(
    path.join(profiles, 'nothink-nostream.yaml'),
    `endpoints:\n${ep('flaky', flaky)}${ep('backup', backup, '    price: { input: 0.27, output: 1.1 }\n')}`,
  );
  await writeFile(
    path.join(profiles, 'think-stream.yaml'),
    `endpoints:\n${ep('or-free', limited)}${ep('chutes', streamer)}`,
  );
  await writeFile(path.join(profiles, 'local.yaml'), `endpoints:\n${ep('ollama', local)}`);
  const logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-dashboard-logs-'));
  const server = startCli(['serve', '--port', '0', '--profiles', profiles, '--log-dir', logDir, '--api-key', KEY]);
  cleanups.push(async () => {
    if (server.exitCode === null) server.kill('SIGTERM');
    await collect(server).catch(() => undefined);
  });
  const [, origin] = await waitForStdout(server, /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/);
  return { origin: origin!, server };
}

async function chat(origin: string, model: string, stream = false): Promise<string> {
  const res = await fetch(`${origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.text();
  assert.equal(res.status, 200, `${model} answers`);
  return res.headers.get('x-request-id') ?? '';
}

describe('dashboard in chromium', browserTestOptions(), () => {
  it('asks for the key, shows every group, a cooling endpoint and new requests live', async () => {
    const { origin } = await startServe();
    // Three 503s in a row cool `flaky` down; the 429 cools `or-free` at once.
    for (let i = 0; i < 3; i++) await chat(origin, 'nothink-nostream');
    await chat(origin, 'think-stream', true);
    await chat(origin, 'local');

    // Every host name but loopback fails to resolve: the page must need nothing from the internet.
    const browser: BrowserSession = await launchBrowser(['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1']);
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1360, height: 1000 });
    const foreign: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreign.push(r.url());
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));

    await page.goto(`${origin}/ui`);
    await page.locator('#login').waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await page.locator('#main').isVisible(), false, 'nothing shows before the key');

    await page.fill('#key', 'wrong-key');
    await page.click('#login-form button');
    await page.locator('#login-error', { hasText: 'refused' }).waitFor({ timeout: 10_000 });

    await page.fill('#key', KEY);
    await page.click('#login-form button');
    await page.locator('#main').waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await page.evaluate("sessionStorage.getItem('failproxy.apiKey')"), KEY);

    const groups = await Promise.all(
      (await page.locator('[data-group]').all()).map((g) => g.getAttribute('data-group')),
    );
    assert.deepEqual(groups, ['local', 'nothink-nostream', 'think-stream']);
    const flaky = page.locator('[data-group="nothink-nostream"] tr[data-endpoint="flaky"]');
    assert.match(await flaky.innerText(), /cooling until \d\d:\d\d:\d\d[\s\S]*because server: upstream overloaded/);
    assert.match(
      await page.locator('[data-group="think-stream"] tr[data-endpoint="or-free"]').innerText(),
      /cooling until[\s\S]*rate_limit/,
    );
    assert.match(
      await page.locator('[data-group="nothink-nostream"] tr[data-endpoint="backup"]').innerText(),
      /100% \(3\/3\)/,
    );

    // A new request: its chain must be in the feed within 2 s of its answer.
    const id = await chat(origin, 'think-stream', true);
    const answeredAt = Date.now();
    const item = page.locator(`#feed li[data-id="${id}"]`);
    await item.waitFor({ timeout: 2000 });
    const seenAfter = Date.now() - answeredAt;
    assert.ok(seenAfter <= 2000, `feed showed the request ${seenAfter} ms after its answer`);
    assert.match(await item.innerText(), /think-stream\s+chutes ✓/);

    // A request that failed over, clicked open, lists its attempts with the reason.
    const failedOver = page.locator('#feed li[data-outcome="ok"]', { hasText: 'flaky' }).first();
    assert.match(await failedOver.innerText(), /flaky ✗ server 503\s*→\s*backup ✓/);
    await failedOver.click();
    await page.locator('#feed .detail', { hasText: 'upstream overloaded' }).first().waitFor({ timeout: 2000 });

    // Charts have been drawn from the server's series.
    assert.ok((await page.locator('#chart-requests rect').count()) > 0, 'request bars are drawn');
    assert.ok((await page.locator('#chart-failures rect').count()) > 0, 'failure bars are drawn');

    await mkdir(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.FAILPROXY_UPDATE_DOCS === '1') await copyFile(shot, path.join(ROOT, 'docs', 'dashboard.png'));

    assert.deepEqual(foreign, [], 'the page asked nothing of any other host');
    assert.deepEqual(errors, [], 'no script errors');
  });
});
