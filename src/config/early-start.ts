/**
 * Group option `early_start_s`: how long a streaming front door holds its
 * response head back before opening the stream and sending keep-alives.
 * Seconds >= 0, or `off` / `false` / `null` to always wait for the first token.
 */
import { describeValue, type ProblemSink } from './problems.js';

/** Seconds, null for off, undefined when absent (the front door's default), false when wrong. */
export function readEarlyStart(value: unknown, sink: ProblemSink): number | null | undefined | false {
  if (value === undefined) return undefined;
  if (value === null || value === false || value === 'off') return null;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  sink.error('early_start_s', `expected seconds (a number >= 0) or "off", got ${describeValue(value)}`);
  return false;
}
