/**
 * `/status` and `/metrics` (SPEC §4): observers that watch engine events, and
 * the GET routes that show what they saw.
 */
import type { EngineObserver } from '../core/observe.js';
import type { HealthTracker } from '../core/health.js';
import type { Group } from '../core/types.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Headers } from './http.js';

export interface Observability {
  observers: EngineObserver[];
  routes: Record<string, (req: IncomingMessage, res: ServerResponse, headers: Headers) => void | Promise<void>>;
}

export function createObservability(_health: HealthTracker, _groups: () => Group[]): Observability {
  return { observers: [], routes: {} };
}
