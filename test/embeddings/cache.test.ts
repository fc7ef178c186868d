/** The embeddings cache on its own: bounded in bytes, least recently used out first, one space per key. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { EmbeddingsCache } from '../../src/core/embeddings/cache.js';

const vector = (fill: number, dims = 128): number[] => new Array<number>(dims).fill(fill);

it('stays within its byte bound and evicts the least recently used vector first', () => {
  const one = vector(1).length * 8;
  // Room for three vectors and their bookkeeping, not four.
  const cache = new EmbeddingsCache(one * 3 + 600);
  const key = (text: string): string => EmbeddingsCache.key('fam', 128, text);
  cache.set(key('a'), vector(1));
  cache.set(key('b'), vector(2));
  cache.set(key('c'), vector(3));
  assert.equal(cache.size, 3);
  assert.ok(cache.get(key('a')));
  cache.set(key('d'), vector(4));
  assert.equal(cache.size, 3);
  assert.ok(cache.bytes <= cache.maxBytes);
  assert.equal(cache.get(key('b')), undefined, 'b was the least recently used');
  assert.deepEqual([cache.get(key('a'))?.[0], cache.get(key('c'))?.[0], cache.get(key('d'))?.[0]], [1, 3, 4]);
  // A vector larger than the whole bound is simply not kept.
  cache.set(key('huge'), vector(5, 100_000));
  assert.equal(cache.get(key('huge')), undefined);
  assert.equal(cache.size, 3);
});

it('never serves a vector across families, dimensions, or text versus token ids', () => {
  const keys = new Set([
    EmbeddingsCache.key('fam-a', 8, 'hello'),
    EmbeddingsCache.key('fam-b', 8, 'hello'),
    EmbeddingsCache.key('fam-a', 16, 'hello'),
    EmbeddingsCache.key('fam-a', 8, [1, 2]),
    EmbeddingsCache.key('fam-a', 8, '1,2'),
  ]);
  assert.equal(keys.size, 5);
});
