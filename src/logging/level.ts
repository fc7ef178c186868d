/**
 * Log levels (SPEC §6): `LOG_LEVEL` accepts the original switches `true` (debug)
 * and `false` (errors only) as well as the level names.
 */
import type { LogLevel } from './types.js';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && Object.hasOwn(SEVERITY, value);
}

/**
 * Reads a `LOG_LEVEL`-style value, case-insensitively and ignoring surrounding
 * blanks: `true` → debug, `false` → error, a level name → that level; unset,
 * empty or unknown → info (a typo in an environment variable must not silence
 * the log or start the proxy with message contents in it).
 */
export function parseLogLevel(value: string | undefined): LogLevel {
  const v = value?.trim().toLowerCase();
  if (v === 'true') return 'debug';
  if (v === 'false') return 'error';
  return isLogLevel(v) ? v : 'info';
}

/** Whether a record at `level` passes a `threshold` (records at or above it pass). */
export function levelEnabled(threshold: LogLevel, level: LogLevel): boolean {
  return SEVERITY[level] >= SEVERITY[threshold];
}
