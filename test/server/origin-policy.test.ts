/**
 * The origin policy as a pure function: which pages (Origin) and which host
 * names (Host) may use the proxy, and the exact CORS grant each one gets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/core/errors.js';
import {
  createOriginPolicy,
  isLoopbackHost,
  normalizeHostname,
  normalizeOrigin,
  type OriginVerdict,
} from '../../src/server/origin-policy.js';

const HOST = '127.0.0.1:8000';

/** Refused for `reason`, with a message naming the flag that would allow it. */
function assertRefusedFor(verdict: OriginVerdict, reason: 'origin' | 'host', label: string): void {
  assert.equal(verdict.ok, false, label);
  assert.equal(!verdict.ok && verdict.reason, reason, label);
  assert.match(!verdict.ok ? verdict.message : '', reason === 'origin' ? /--cors-origin/ : /--allowed-host/);
}

describe('origin policy: Origin', () => {
  const policy = createOriginPolicy();
  const allowed = (origin: string | undefined): boolean => policy.check(origin, HOST, true).ok;

  it('allows pages on this machine, any port, any scheme of http(s)', () => {
    for (const origin of [
      'http://localhost',
      'http://localhost:3000',
      'https://localhost:8443',
      'http://127.0.0.1:5173',
      'http://127.8.9.10',
      'http://[::1]:3000',
      'http://[0:0:0:0:0:0:0:1]:3000',
      'http://LOCALHOST:3000',
      'HTTP://LocalHost:3000',
      'http://localhost.:3000',
      'http://127.0.0.1.:3000',
    ]) {
      assert.equal(allowed(origin), true, origin);
    }
  });

  it('grants exactly the origin the browser sent, never *', () => {
    assert.deepEqual(policy.check('http://localhost:3000', HOST, true), {
      ok: true,
      allowOrigin: 'http://localhost:3000',
    });
  });

  it('lets requests without an Origin through, with no grant (SDKs, curl, server-side frontends)', () => {
    assert.deepEqual(policy.check(undefined, HOST, true), { ok: true, allowOrigin: null });
  });

  it('refuses every other page, including look-alikes of loopback names', () => {
    for (const origin of [
      'https://evil.example',
      'null',
      'http://localhost.evil.com',
      'http://localhost.evil.com:3000',
      'http://127.0.0.1.evil.com',
      'http://evil.localhost.com',
      'http://[::2]:3000',
      'http://0.0.0.0:3000',
      'http://10.0.0.5:3000',
      'http://%6cocalhost:3000',
      'http://evil.example@127.0.0.1',
      'http://localhost:3000/path',
      'http://localhost:3000, https://evil.example',
      'file://',
      'chrome-extension://abcdefghijklmnop',
      '',
    ]) {
      assertRefusedFor(policy.check(origin, HOST, true), 'origin', origin);
    }
  });

  it('--cors-origin adds exactly the named origins, normalized as browsers send them', () => {
    const named = createOriginPolicy({
      corsOrigins: ['https://app.example', 'HTTP://Other.Example:80/', 'chrome-extension://AbcDef'],
    });
    const ok = (o: string): boolean => named.check(o, HOST, true).ok;
    assert.equal(ok('https://app.example'), true);
    assert.equal(ok('https://app.example:443'), true);
    assert.equal(ok('http://other.example'), true);
    assert.equal(ok('chrome-extension://abcdef'), true);
    assert.equal(ok('http://app.example'), false, 'another scheme is another origin');
    assert.equal(ok('https://app.example:8443'), false, 'another port is another origin');
    assert.equal(ok('https://evil.app.example'), false);
    assert.equal(ok('https://app.example.evil.com'), false);
    assert.equal(ok('http://localhost:3000'), true, 'loopback pages stay allowed');
    assert.deepEqual(named.check('https://app.example', HOST, true), { ok: true, allowOrigin: 'https://app.example' });
  });

  it("--cors-origin '*' serves any page, null included, with the * grant", () => {
    const any = createOriginPolicy({ corsOrigins: ['*'] });
    assert.equal(any.anyOrigin, true);
    for (const origin of ['https://evil.example', 'null', undefined]) {
      assert.deepEqual(any.check(origin, HOST, true), { ok: true, allowOrigin: '*' });
    }
  });

  it('rejects --cors-origin values that are not origins, and null, as usage errors', () => {
    for (const value of ['app.example', 'https://app.example/path', 'null', 'NULL', '', 'https://', 'localhost:3000']) {
      assert.throws(() => createOriginPolicy({ corsOrigins: [value] }), UsageError, value);
    }
    assert.throws(() => createOriginPolicy({ corsOrigins: ['null'] }), /'\*'/);
  });
});

describe('origin policy: Host', () => {
  const policy = createOriginPolicy({ allowedHosts: ['proxy.example', 'Box.Lan:8000'] });
  const hostOk = (host: string | undefined, checkHost = true): boolean => policy.check(undefined, host, checkHost).ok;

  it('accepts loopback names with and without the port', () => {
    for (const host of [
      'localhost',
      'localhost:8000',
      'LOCALHOST:8000',
      'localhost.:8000',
      '127.0.0.1',
      '127.0.0.1:8000',
      '127.0.0.1.:8000',
      '127.1.2.3:8000',
      '[::1]',
      '[::1]:8000',
    ]) {
      assert.equal(hostOk(host), true, host);
    }
  });

  it('accepts names given with --allowed-host (port and case ignored)', () => {
    for (const host of ['proxy.example', 'proxy.example:8000', 'PROXY.EXAMPLE.', 'box.lan', 'box.lan:9999'])
      assert.equal(hostOk(host), true, host);
  });

  it('refuses any other name, as a DNS-rebinding page would send it', () => {
    for (const host of [
      'attacker.example:8000',
      'localhost.evil.com:8000',
      '127.0.0.1.evil.com:8000',
      'evil.proxy.example',
      '[::2]:8000',
      '::1',
      'evil.example@127.0.0.1',
      '127.0.0.1/x',
      '%6cocalhost',
      '',
    ]) {
      assertRefusedFor(policy.check(undefined, host, true), 'host', host);
    }
  });

  it('a request without Host (HTTP/1.0 from a program) passes: browsers always send one', () => {
    assert.equal(hostOk(undefined), true);
  });

  it('is off when the server is not bound to loopback', () => {
    assert.equal(hostOk('attacker.example:8000', false), true);
  });

  it("--allowed-host '*' turns it off; bad values are usage errors", () => {
    assert.equal(createOriginPolicy({ allowedHosts: ['*'] }).check(undefined, 'anything.example', true).ok, true);
    for (const value of ['http://proxy.example', 'a/b', '', 'user@host']) {
      assert.throws(() => createOriginPolicy({ allowedHosts: [value] }), UsageError, value);
    }
  });

  it('checks Host before Origin: an allowed origin does not excuse a foreign host', () => {
    const verdict = createOriginPolicy({ corsOrigins: ['*'] }).check(
      'http://localhost:3000',
      'attacker.example:8000',
      true,
    );
    assert.equal(verdict.ok, false);
    assert.equal(!verdict.ok && verdict.reason, 'host');
  });
});

describe('origin policy: helpers', () => {
  it('isLoopbackHost knows bind addresses and host names', () => {
    for (const h of ['localhost', '127.0.0.1', '127.255.0.9', '::1', '[::1]', '::ffff:127.0.0.1', '[::ffff:7f00:1]'])
      assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '192.168.1.2', 'localhost.evil.com', '127.0.0.1.evil.com', '128.0.0.1', '::2'])
      assert.equal(isLoopbackHost(h), false, h);
  });

  it('normalizeHostname and normalizeOrigin canonicalize what the URL parser would', () => {
    assert.equal(normalizeHostname('127.1:80'), '127.0.0.1');
    assert.equal(normalizeHostname('[0::1]:1'), '[::1]');
    assert.equal(normalizeHostname('Example.COM.'), 'example.com');
    assert.equal(normalizeOrigin('https://App.Example:443'), 'https://app.example');
    assert.equal(normalizeOrigin('http://localhost:3000/'), 'http://localhost:3000');
    assert.equal(normalizeOrigin('null'), null);
  });

  it('gives the same answers when asked again, also after many distinct values', () => {
    const policy = createOriginPolicy();
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 600; i++) {
        assert.equal(policy.check(`http://site${i}.example`, `rebind${i}.example`, true).ok, false);
        assert.equal(policy.check(`http://localhost:${3000 + i}`, `127.0.0.1:${8000 + i}`, true).ok, true);
      }
    }
  });

  it('echoes a refused value bounded in length', () => {
    const verdict = createOriginPolicy().check(`https://${'a'.repeat(5000)}.example`, HOST, true);
    assert.equal(verdict.ok, false);
    assert.ok(!verdict.ok && verdict.message.length < 600);
  });
});
