/**
 * What a web page in a real browser can do with FailProxy on 127.0.0.1:
 * chromium (Debian's, through playwright-core) opens pages from a host name
 * that is not loopback but resolves to 127.0.0.1, as any site on the internet
 * or a DNS-rebinding one would; they get no completion and the fake upstream
 * receives nothing. A page on localhost gets its completion.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { browserTestOptions, launchBrowser, type BrowserSession } from '../helpers/browser.js';
import { completionBody, json, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { endpoint, group } from '../helpers/groups.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';

const options = browserTestOptions();
if (options.skip) process.stderr.write(`SKIP test/server/browser-origin: ${options.skip}\n`);

interface FetchOutcome {
  status?: number;
  text?: string;
  error?: string;
}

describe('a real browser against serve on 127.0.0.1', { ...options, timeout: 120_000 }, () => {
  let upstream: FakeUpstream;
  let proxy: RunningProxy;
  let pages: Server;
  let pagePort: number;
  let proxyPort: number;
  let browser: BrowserSession;
  /** Origin and Host of every request that reached the proxy, refused or not. */
  const seen: Array<{ origin?: string; host?: string; url?: string }> = [];

  before(async () => {
    upstream = await startFakeUpstream(json(completionBody('Hello from upstream')));
    proxy = await startProxy([group('g', [endpoint(upstream.baseurl, { name: 'up' })])]);
    proxy.proxy.server.on('request', (req: { headers: Record<string, string | undefined>; url?: string }) =>
      seen.push({ origin: req.headers.origin, host: req.headers.host, url: req.url }),
    );
    proxyPort = Number(new URL(proxy.origin).port);
    // Whatever host name the browser used, the same harmless page: the test drives it.
    pages = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>page</title><p>a page</p>');
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pagePort = (pages.address() as AddressInfo).port;
    browser = await launchBrowser(['--host-resolver-rules=MAP evil.test 127.0.0.1']);
  });

  after(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (pages ? pages.close(() => resolve()) : resolve()));
    await proxy?.close();
    await upstream?.close();
  });

  /** Open `pageUrl`, then let that page fetch `target` as a script on it would: a text/plain POST, no preflight. */
  async function fetchFrom(pageUrl: string, target: string): Promise<FetchOutcome> {
    const page = await browser.newPage();
    try {
      await page.goto(pageUrl);
      return await page.evaluate(async (url: string): Promise<FetchOutcome> => {
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'text/plain' },
            body: JSON.stringify({ model: 'g', messages: [{ role: 'user', content: 'spend their keys' }] }),
          });
          return { status: res.status, text: await res.text() };
        } catch (error) {
          return { error: String(error) };
        }
      }, target);
    } finally {
      await page.close();
    }
  }

  it('a page from another host name cannot get a completion, and nothing reaches the upstream', async () => {
    const before = upstream.requests.length;
    const seenBefore = seen.length;
    const outcome = await fetchFrom(
      `http://evil.test:${pagePort}/`,
      `http://127.0.0.1:${proxyPort}/v1/chat/completions`,
    );
    assert.equal(outcome.status, undefined, `the page must not read an answer: ${JSON.stringify(outcome)}`);
    assert.match(String(outcome.error), /TypeError/);
    // It was FailProxy that said no: the browser did send the request, with the page's origin.
    const arrived = seen.slice(seenBefore);
    assert.deepEqual(
      arrived.map((r) => r.origin),
      [`http://evil.test:${pagePort}`],
    );
    assert.equal(upstream.requests.length, before, 'no upstream call');
  });

  it('a DNS-rebinding page (its own name, FailProxy’s port) is refused even same-origin', async () => {
    const before = upstream.requests.length;
    const page = await browser.newPage();
    try {
      const landing = await page.goto(`http://evil.test:${proxyPort}/v1/models`);
      assert.equal(landing?.status(), 403);
      const outcome = await page.evaluate(async (): Promise<FetchOutcome> => {
        const res = await fetch('/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: '{"model":"g","messages":[{"role":"user","content":"hi"}]}',
        });
        return { status: res.status, text: await res.text() };
      });
      assert.equal(outcome.status, 403);
      assert.match(String(outcome.text), /host_not_allowed/);
    } finally {
      await page.close();
    }
    assert.equal(upstream.requests.length, before, 'no upstream call');
  });

  it('a page on http://localhost:PORT gets its completion', async () => {
    const before = upstream.requests.length;
    const outcome = await fetchFrom(
      `http://localhost:${pagePort}/`,
      `http://127.0.0.1:${proxyPort}/v1/chat/completions`,
    );
    assert.equal(outcome.status, 200, JSON.stringify(outcome));
    assert.match(String(outcome.text), /Hello from upstream/);
    assert.equal(upstream.requests.length, before + 1);
  });
});
