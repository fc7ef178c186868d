/** HealthTracker with a store behind it: what it tells the store, and what the store may decide. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  endpointHealthId,
  endpointKey,
  HealthTracker,
  MemoryHealthStore,
  type FailureUpdate,
  type HealthSink,
  type HealthStore,
  type HealthStoreStatus,
} from '../../src/core/health.js';
import type { Failure } from '../../src/core/types.js';
import { endpoint } from '../helpers/groups.js';

class RecordingStore implements HealthStore {
  sink: HealthSink | null = null;
  calls: string[] = [];
  probeAllowed = true;
  attach(sink: HealthSink): void {
    this.sink = sink;
  }
  mayProbe(id: string): boolean {
    this.calls.push(`mayProbe ${id}`);
    return this.probeAllowed;
  }
  failed(id: string, update: FailureUpdate): void {
    this.calls.push(`failed ${id} ${update.rule} probe=${update.wasProbe}`);
  }
  succeeded(id: string, wasProbe: boolean): void {
    this.calls.push(`succeeded ${id} probe=${wasProbe}`);
  }
  released(id: string): void {
    this.calls.push(`released ${id}`);
  }
  status(): HealthStoreStatus {
    return { store: 'redis', shared: true, connected: true, instances: 2 };
  }
  async close(): Promise<void> {}
}

const serverError: Failure = { class: 'server', status: 500, message: 'boom' };
const authError: Failure = { class: 'auth', status: 401, message: 'bad key' };
const cooldown = { failures: 3, seconds: 30 };

describe('HealthTracker and its store', () => {
  const ep = endpoint('http://127.0.0.1:9/v1', { name: 'a', apikey: 'sk-secret-key-123456' });
  const id = endpointHealthId(ep);

  it('identifies an endpoint by an opaque hash, never by its key', () => {
    assert.match(id, /^[0-9a-f]{24}$/);
    assert.ok(!id.includes('sk-secret') && !endpointKey(ep).includes('sk-secret'));
    assert.notEqual(endpointHealthId({ ...ep, model: 'other' }), id);
  });

  it('a healthy request tells the store nothing', () => {
    const store = new RecordingStore();
    const tracker = new HealthTracker(() => 0, store);
    tracker.plan([ep]);
    assert.equal(tracker.beginAttempt(ep), false);
    tracker.recordSuccess(ep);
    tracker.releaseAttempt(ep);
    assert.deepEqual(store.calls, []);
  });

  it('reports failures and the recovery, and applies what the store pushes', () => {
    const clock = { now: 1000 };
    const store = new RecordingStore();
    const tracker = new HealthTracker(() => clock.now, store);
    tracker.recordFailure(ep, serverError, cooldown);
    assert.deepEqual(store.calls, [`failed ${id} consecutive probe=false`]);
    assert.equal(tracker.snapshot(ep).consecutiveFailures, 1);
    // Another instance counted two more and opened the breaker.
    store.sink!.apply(id, { consecutive: 3, openUntil: 31_000, openMs: 30_000, reason: 'server', message: 'boom' });
    assert.equal(tracker.snapshot(ep).state, 'cooling');
    assert.deepEqual(tracker.plan([ep]), [{ endpoint: ep, cooling: true }]);
    store.sink!.apply(id, null);
    assert.equal(tracker.snapshot(ep).state, 'ok');
    tracker.recordFailure(ep, authError, cooldown);
    tracker.recordSuccess(ep);
    assert.deepEqual(store.calls.slice(1), [`failed ${id} immediate probe=false`, `succeeded ${id} probe=false`]);
  });

  it('a half-open endpoint stays cooling while the store withholds the probe', () => {
    const clock = { now: 0 };
    const store = new RecordingStore();
    const tracker = new HealthTracker(() => clock.now, store);
    tracker.recordFailure(ep, authError, cooldown);
    clock.now = 300_001;
    store.probeAllowed = false;
    assert.deepEqual(tracker.plan([ep]), [{ endpoint: ep, cooling: true }]);
    assert.equal(tracker.beginAttempt(ep), false);
    store.probeAllowed = true;
    assert.deepEqual(tracker.plan([ep]), [{ endpoint: ep, cooling: false }]);
    assert.equal(tracker.beginAttempt(ep), true);
    tracker.recordFailure(ep, serverError, cooldown);
    assert.equal(store.calls.at(-1), `failed ${id} consecutive probe=true`);
    // A failed probe reopens for the last cooldown's length.
    assert.equal(tracker.snapshot(ep).until, 300_001 + 300_000);
  });

  it('concurrent requests planned before the probe starts do not all probe', () => {
    const clock = { now: 0 };
    const tracker = new HealthTracker(() => clock.now, new MemoryHealthStore());
    tracker.recordFailure(ep, authError, cooldown);
    clock.now = 300_001;
    const first = tracker.plan([ep]);
    const second = tracker.plan([ep]);
    assert.deepEqual(first, [{ endpoint: ep, cooling: false }]);
    assert.deepEqual(second, [{ endpoint: ep, cooling: true }]);
    assert.equal(tracker.beginAttempt(ep), true);
    assert.equal(tracker.beginAttempt(ep), false);
    // A cancelled probe frees it for the next request.
    tracker.releaseAttempt(ep);
    clock.now += ep.timeoutMs + 1;
    assert.deepEqual(tracker.plan([ep]), [{ endpoint: ep, cooling: false }]);
  });

  it('the in-memory store says the state is not shared', () => {
    assert.deepEqual(new HealthTracker().storeStatus(), {
      store: 'memory',
      shared: false,
      connected: null,
      instances: 1,
    });
  });
});
