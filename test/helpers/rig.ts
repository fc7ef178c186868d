/**
 * Fake upstreams and engines that a test file starts as it goes and that are
 * all closed when the file ends.
 */
import { after } from 'node:test';
import { FailoverEngine, type EngineOptions } from '../../src/core/engine.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';

export function testRig(): {
  upstream: (...args: Parameters<typeof startFakeUpstream>) => Promise<FakeUpstream>;
  engine: (options?: EngineOptions) => FailoverEngine;
} {
  const upstreams: FakeUpstream[] = [];
  const engines: FailoverEngine[] = [];
  after(async () => {
    await Promise.all(engines.map((e) => e.close()));
    await Promise.all(upstreams.map((u) => u.close()));
  });
  return {
    async upstream(...args) {
      const u = await startFakeUpstream(...args);
      upstreams.push(u);
      return u;
    },
    engine(options) {
      const e = new FailoverEngine(options);
      engines.push(e);
      return e;
    },
  };
}
