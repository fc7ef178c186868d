/**
 * The resilience group options (SPEC §3.11): `retry`, `resume`, `hedge_ms`,
 * `deadline`, `failover_on_content_filter`. Read from the on-disk snake_case
 * shape into the runtime `Group` fields; every mistake is reported with its path.
 */
import { DEFAULT_RETRY } from '../core/resilience.js';
import { FAILURE_CLASSES, type FailureClass, type Group, type RetryOptions } from '../core/types.js';
import { isPlainObject } from './endpoint.js';
import { describeValue, keyPath, type ProblemSink } from './problems.js';

export const RESILIENCE_OPTIONS = ['retry', 'resume', 'hedge_ms', 'deadline', 'failover_on_content_filter'] as const;

export type ResilienceOptions = Pick<Group, 'retry' | 'resume' | 'hedgeMs' | 'deadlineMs' | 'failoverOnContentFilter'>;

/** Null when one of the options is wrong (the problems say which). */
export function readResilienceOptions(raw: Record<string, unknown>, sink: ProblemSink): ResilienceOptions | null {
  const before = sink.errorCount;
  const out: ResilienceOptions = {};
  const retry = readRetry(raw['retry'], sink);
  if (retry) out.retry = retry;
  const resume = readBoolean(raw['resume'], 'resume', sink);
  if (resume !== undefined) out.resume = resume;
  const failover = readBoolean(raw['failover_on_content_filter'], 'failover_on_content_filter', sink);
  if (failover !== undefined) out.failoverOnContentFilter = failover;
  const hedge = raw['hedge_ms'];
  if (hedge !== undefined && hedge !== null && hedge !== 'off' && hedge !== false) {
    if (typeof hedge === 'number' && Number.isFinite(hedge) && hedge >= 0) out.hedgeMs = hedge;
    else sink.error('hedge_ms', `expected milliseconds (a number >= 0) or "off", got ${describeValue(hedge)}`);
  }
  const deadline = raw['deadline'];
  if (deadline !== undefined && deadline !== null && deadline !== 'none') {
    if (typeof deadline === 'number' && Number.isFinite(deadline) && deadline > 0) out.deadlineMs = deadline * 1000;
    else sink.error('deadline', `expected a positive number of seconds, got ${describeValue(deadline)}`);
  }
  return sink.errorCount === before ? out : null;
}

function readBoolean(value: unknown, path: string, sink: ProblemSink): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  sink.error(path, `expected true or false, got ${describeValue(value)}`);
  return undefined;
}

const RETRY_FIELDS = ['attempts', 'on', 'base_ms', 'max_ms', 'retry_after_max_s'];

function readRetry(raw: unknown, sink: ProblemSink): RetryOptions | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isPlainObject(raw)) {
    sink.error('retry', `expected an object { attempts, on, base_ms, max_ms, retry_after_max_s }, got ${describeValue(raw)}`);
    return undefined;
  }
  const retry: RetryOptions = { ...DEFAULT_RETRY, on: [...DEFAULT_RETRY.on] };
  const number = (key: string, min: number, integer: boolean): number | undefined => {
    const value = raw[key];
    if (value === undefined) return undefined;
    if (typeof value === 'number' && Number.isFinite(value) && value >= min && (!integer || Number.isInteger(value))) return value;
    sink.error(`retry.${key}`, `expected ${integer ? 'an integer' : 'a number'} >= ${min}, got ${describeValue(value)}`);
    return undefined;
  };
  retry.attempts = number('attempts', 0, true) ?? retry.attempts;
  retry.baseMs = number('base_ms', 0, false) ?? retry.baseMs;
  retry.maxMs = number('max_ms', 0, false) ?? retry.maxMs;
  retry.retryAfterMaxS = number('retry_after_max_s', 0, false) ?? retry.retryAfterMaxS;
  const on = raw['on'];
  if (on !== undefined) {
    const classes = Array.isArray(on) ? on : [on];
    const bad = classes.filter((c) => typeof c !== 'string' || !(FAILURE_CLASSES as readonly string[]).includes(c));
    if (bad.length > 0) {
      sink.error('retry.on', `expected failure classes (${FAILURE_CLASSES.join(', ')}), got ${bad.map(describeValue).join(', ')}`);
    } else {
      retry.on = classes as FailureClass[];
    }
  }
  for (const key of Object.keys(raw)) {
    if (!RETRY_FIELDS.includes(key)) sink.warning(keyPath('retry', key), 'unknown field, ignored');
  }
  return retry;
}
