/** Key-pool groups read the way `serve` reads them, and upstream counts per key. */
import assert from 'node:assert/strict';
import { validateGroup } from '../../src/config/validate.js';
import type { Group } from '../../src/core/types.js';
import type { FakeUpstream } from './fake-upstream.js';

export const KEYS = { K1: 'sk-pool-key-one-1111', K2: 'sk-pool-key-two-2222', K3: 'sk-pool-key-three-3333' };

/** A group read from a profile the way `serve` reads it (keys from `KEYS` by default). */
export function poolGroup(raw: unknown, env: NodeJS.ProcessEnv = KEYS): Group {
  const { group, problems } = validateGroup(raw, 'pool', 'pool.yaml', env);
  assert.ok(group, `the profile is valid: ${JSON.stringify(problems)}`);
  return group;
}

/** Requests an upstream received, counted by the key they carried. */
export function perKey(u: FakeUpstream): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of u.requests) {
    const key = String(r.headers.authorization ?? '').replace(/^Bearer /, '');
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
