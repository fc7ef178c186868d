/**
 * The young-generation cap `serve` starts (#18). Each case runs in a child
 * Node, so the flag it sets cannot leak into the test runner, and allocates
 * the way a busy server does: bursts of short-lived objects with a few
 * survivors, the event loop turning between them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { SEMI_SPACE_CAP_MB } from '../../src/server/young-generation.js';

const run = promisify(execFile);
/**
 * Both semi-spaces at the cap, plus the few pages Node 24's new space briefly
 * reports above it (measured 17.5 MiB for a 16 MiB cap); uncapped, the same
 * burst reaches 32 MiB on Node 20 and 128 MiB on Node 24.
 */
const CAPPED_MB = 2 * SEMI_SPACE_CAP_MB * 1.25;
const MODULE = new URL('../../dist/server/young-generation.js', import.meta.url).href;

/** Peak size of V8's new space (both semi-spaces) in MiB over a burst. */
async function peakNewSpaceMb(options: { cap: boolean; execArgv?: string[] }): Promise<number> {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    import { capYoungGeneration } from ${JSON.stringify(MODULE)};
    const stop = ${options.cap} ? capYoungGeneration() : () => {};
    const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    let peak = 0;
    const kept = [];
    for (let burst = 0; burst < 400; burst++) {
      for (let i = 0; i < 20000; i++) {
        const o = { id: i, text: 'chunk ' + i, parts: [i, burst] };
        if (i % 10 === 0) kept.push(o);
      }
      if (kept.length > 100000) kept.length = 0;
      peak = Math.max(peak, newSpace());
      await new Promise((resolve) => setImmediate(resolve));
    }
    stop();
    console.log(peak / 1048576);
  `;
  const env = { ...process.env, NODE_OPTIONS: '' };
  const { stdout } = await run(process.execPath, [...(options.execArgv ?? []), '--input-type=module', '-e', script], {
    env,
  });
  return Number(stdout.trim());
}

test('a burst grows the young generation past the cap when nothing caps it (the premise)', async () => {
  const peak = await peakNewSpaceMb({ cap: false });
  assert.ok(peak > CAPPED_MB, `peak ${peak} MiB`);
});

test('the cap keeps the young generation at its size through the same burst', async () => {
  const peak = await peakNewSpaceMb({ cap: true });
  assert.ok(peak <= CAPPED_MB, `peak ${peak} MiB`);
});

test('a size the user chose on the command line is left alone', async () => {
  const peak = await peakNewSpaceMb({ cap: true, execArgv: ['--max-semi-space-size=32'] });
  assert.ok(peak > CAPPED_MB, `peak ${peak} MiB`);
});
