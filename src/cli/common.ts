/**
 * What every command shares: the common options, finding and loading the
 * profiles, and the log writer. Commands print; the loaders only return data.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../core/errors.js';
import type { RequestContext } from '../core/observe.js';
import type { ChatRequest, Group } from '../core/types.js';
import { formatProblem, groupNameOf, loadProfiles, resolveProfilesDir, type ConfigProblem } from '../config/profiles.js';
import { parseLogLevel } from '../logging/level.js';
import { JsonlLogger } from '../logging/writer.js';

export interface CommonOptions {
  profiles?: string;
  logDir?: string;
}

/** `--profiles DIR` and `--log-dir DIR`, on every command. */
export function withCommonOptions(command: Command): Command {
  return command
    .option('--profiles <dir>', 'profiles directory (default: $FAILPROXY_PROFILES, ./profiles, ./config)')
    .option('--log-dir <dir>', 'log directory (default: $FAILPROXY_LOG_DIR or ./logs)');
}

export function resolveLogDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? (env.FAILPROXY_LOG_DIR && env.FAILPROXY_LOG_DIR.trim() !== '' ? env.FAILPROXY_LOG_DIR : undefined);
  return path.resolve(chosen ?? 'logs');
}

/** The context of a request the CLI runs in-process (`ask`, `replay`), for its observers. */
export function inProcessContext(group: string, body: ChatRequest): RequestContext {
  return { requestId: randomUUID(), group, stream: body.stream === true, source: 'ask', repaired: false, messages: body.messages, body };
}

/** Where captures are read from: --capture, $FAILPROXY_CAPTURE_DIR, else ./captures. */
export function resolveCaptureDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? (env.FAILPROXY_CAPTURE_DIR || 'captures'));
}

export function createLogger(flag: string | undefined, onError?: (err: Error) => void): JsonlLogger {
  return new JsonlLogger({
    dir: resolveLogDir(flag),
    level: parseLogLevel(process.env.LOG_LEVEL),
    ...(onError ? { onError } : {}),
  });
}

export interface LoadedProfiles {
  dir: string;
  groups: Map<string, Group>;
  problems: ConfigProblem[];
}

/**
 * Load the profiles for a command. A missing directory or a directory with no
 * usable group is a configuration error (exit 2) unless `allowEmpty`
 * (serve --demo still has its demo group).
 */
export async function loadGroupsOrFail(flag: string | undefined, allowEmpty = false): Promise<LoadedProfiles> {
  const dir = resolveProfilesDir({ ...(flag !== undefined ? { flag } : {}), env: process.env, cwd: process.cwd() });
  const loaded = await loadProfiles(dir, process.env);
  if (loaded.groups.size === 0 && !allowEmpty) {
    const errors = loaded.problems.filter((p) => p.severity === 'error').map(formatProblem);
    const why = errors.length > 0 ? `:\n  ${errors.join('\n  ')}` : '';
    throw new ConfigError(`no usable groups in ${dir}${why}`);
  }
  return loaded;
}

/** One line per problem, for stderr. */
export function describeProblems(problems: readonly ConfigProblem[]): string[] {
  return problems.map((p) => `${p.severity}: ${formatProblem(p)}`);
}

/**
 * Start-up lines: one per group with endpoints skipped for unset variables
 * (how many are usable, which variables to set), then every other problem.
 * `only` limits both to one group (`ask` warns about the group it uses).
 */
export function describeStartupProblems(groups: Iterable<Group>, problems: readonly ConfigProblem[], only?: string): string[] {
  const lines: string[] = [];
  for (const group of groups) {
    if (group.skipped.length === 0 || (only !== undefined && group.name !== only)) continue;
    const vars = new Set<string>();
    for (const p of problems) if (p.file === group.source) for (const v of p.missingEnv ?? []) vars.add(v);
    const total = group.endpoints.length + group.skipped.length;
    const set = `set ${[...vars].join(', ')}`;
    const what = group.endpoints.length === 0 ? `no endpoint usable; ${set}` : `${group.endpoints.length} of ${total} endpoints usable; ${set} for the other ${group.skipped.length}`;
    lines.push(`warning: ${group.name}: ${what} (${group.source})`);
  }
  const rest = problems.filter((p) => p.missingEnv === undefined && (only === undefined || groupNameOf(p.file) === only));
  return [...lines, ...describeProblems(rest)];
}

/** Parse a non-negative integer option or throw a usage error naming it. */
export function parseIntOption(name: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name} expects a whole number >= ${min}, got "${value}"`);
  return n;
}
