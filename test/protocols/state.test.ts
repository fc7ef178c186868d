/**
 * The front doors' own state: the `previous_response_id` store stays within
 * its bounds, and thinking signatures open only when FailProxy wrote them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseStore } from '../../src/protocols/responses/store.js';
import { ThinkingSigner } from '../../src/protocols/thinking-signature.js';
import { parseModelMapping, resolveGroup } from '../../src/protocols/model-map.js';
import { group } from '../helpers/groups.js';

const turn = (text: string) => [{ role: 'user', content: text }];

describe('previous_response_id store', () => {
  it('evicts the least recently used beyond its count', () => {
    const store = new ResponseStore({ maxEntries: 2 });
    store.set('a', turn('a'));
    store.set('b', turn('b'));
    assert.ok(store.get('a'));
    store.set('c', turn('c'));
    assert.equal(store.get('b'), undefined);
    assert.ok(store.get('a'));
    assert.ok(store.get('c'));
    assert.equal(store.size, 2);
  });

  it('forgets entries older than its TTL', () => {
    let now = 1000;
    const store = new ResponseStore({ ttlMs: 50 }, () => now);
    store.set('a', turn('a'));
    now += 49;
    assert.ok(store.get('a'));
    now += 51;
    assert.equal(store.get('a'), undefined);
    assert.equal(store.bytes, 0);
  });

  it('keeps its bytes under the cap and refuses a history larger than the cap', () => {
    const store = new ResponseStore({ maxBytes: 1000 });
    for (let i = 0; i < 20; i++) store.set(`r${i}`, turn('x'.repeat(100)));
    assert.ok(store.bytes <= 1000, `${store.bytes} bytes`);
    assert.ok(store.get('r19'));
    assert.equal(store.get('r0'), undefined);
    store.set('huge', turn('x'.repeat(2000)));
    assert.equal(store.get('huge'), undefined);
  });
});

describe('thinking signatures', () => {
  it('carry the reasoning they stand for', () => {
    const signer = new ThinkingSigner('secret');
    const reasoning = 'First, the user wants… ünïcödé 🤔\n'.repeat(50);
    const signature = signer.sign(reasoning);
    assert.match(signature, /^fp1\.[\w-]+\.[\w-]+$/);
    assert.equal(signer.open(signature), reasoning);
  });

  it('are foreign when tampered with, signed with another secret, or not ours', () => {
    const signer = new ThinkingSigner('secret');
    const signature = signer.sign('thought');
    const [version, payload, mac] = signature.split('.');
    const other = new ThinkingSigner('secret').sign('other thought').split('.')[1];
    assert.equal(signer.open(`${version}.${other}.${mac}`), null);
    assert.equal(new ThinkingSigner('another').open(signature), null);
    assert.equal(new ThinkingSigner().open(signature), null, 'a random per-process secret');
    for (const foreign of ['EqQBCkYIBxgCKkB', '', 'fp1.', `fp1.${payload}`, 42, null, undefined])
      assert.equal(signer.open(foreign), null);
  });
});

describe('model mapping', () => {
  it('maps glob patterns onto groups; a group name wins; unknown names map nowhere', () => {
    const groups = new Map([
      ['think', group('think', [])],
      ['fast', group('fast', [])],
    ]);
    const lookup = (name: string) => groups.get(name);
    const map = ['claude-opus-*=think', 'claude-*-haiku*=fast', 'claude-*=think'].map((t) => parseModelMapping(t)!);
    assert.equal(resolveGroup('claude-opus-4-1-20250805', lookup, map)?.name, 'think');
    assert.equal(resolveGroup('claude-3-5-haiku-20241022', lookup, map)?.name, 'fast');
    assert.equal(resolveGroup('fast', lookup, map)?.name, 'fast');
    assert.equal(resolveGroup('gpt-5', lookup, map), undefined);
    assert.equal(parseModelMapping('no-equals'), null);
    assert.equal(parseModelMapping('=think'), null);
  });
});
