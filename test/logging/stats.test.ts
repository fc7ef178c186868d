import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readLogFile } from '../../src/logging/reader.js';
import { computeGroupStats, computeStats, percentile } from '../../src/logging/stats.js';
import { makeLogDir, STATS_DAY, STATS_DAY_EXPECTED } from './fixtures.js';

test('percentile: nearest rank', () => {
  const oneToTwenty = Array.from({ length: 20 }, (_, i) => i + 1);
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([7], 50), 7);
  assert.equal(percentile([7], 95), 7);
  assert.equal(percentile([40, 10, 30, 20], 50), 20);
  assert.equal(percentile([40, 10, 30, 20], 95), 40);
  assert.equal(percentile(oneToTwenty, 95), 19);
  assert.equal(percentile(oneToTwenty, 50), 10);
  assert.equal(percentile(oneToTwenty.slice(0, 10), 95), 10);
  assert.equal(percentile([3, 1, 2], 0), 1);
  assert.equal(percentile([3, 1, 2], 100), 3);
});

test('per endpoint and per group, checked against numbers worked out by hand', async (t) => {
  const { dir, cleanup } = await makeLogDir();
  t.after(cleanup);
  const { records } = await readLogFile(path.join(dir, `${STATS_DAY}.jsonl`));
  assert.deepEqual(computeStats(records), STATS_DAY_EXPECTED.endpoints);
  assert.deepEqual(computeGroupStats(records), STATS_DAY_EXPECTED.groups);
});

test('no records, no rows', () => {
  assert.deepEqual(computeStats([]), []);
  assert.deepEqual(computeGroupStats([]), []);
});
