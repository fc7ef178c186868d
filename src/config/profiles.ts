/**
 * Profiles (SPEC §2): every `NAME.json|yaml|yml` in the profiles directory is
 * the group `NAME`. Loading never throws on bad content and never lets one
 * broken file hide the other groups; problems come back as data.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import type { Group } from '../core/types.js';
import { duplicateGroupProblem, groupNameOf, listProfileFiles, loadProfileFile, wholeFileError } from './files.js';
import type { ConfigProblem } from './problems.js';

export type { ConfigProblem } from './problems.js';
export { formatProblem } from './problems.js';
export { groupNameOf, isProfileFileName, loadProfileFile, PROFILE_EXTENSIONS } from './files.js';
export type { ProfileUpdate, ProfileWatcher, WatchOptions } from './watch.js';
export { watchProfiles } from './watch.js';

/**
 * Picks the profiles directory: `--profiles DIR` > env `FAILPROXY_PROFILES` >
 * `./profiles` > `./config` (the original Python layout, used only when it
 * exists and `./profiles` does not). Relative paths resolve against `cwd`.
 * When nothing exists the `./profiles` path is returned, so the caller's
 * "not found" message names the conventional place.
 */
export function resolveProfilesDir(opts: { flag?: string; env: NodeJS.ProcessEnv; cwd: string }): string {
  const chosen = nonEmpty(opts.flag) ?? nonEmpty(opts.env['FAILPROXY_PROFILES']);
  if (chosen !== undefined) return path.resolve(opts.cwd, chosen);
  const profiles = path.resolve(opts.cwd, 'profiles');
  const legacy = path.resolve(opts.cwd, 'config');
  return !isDirectory(profiles) && isDirectory(legacy) ? legacy : profiles;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Loads every group in `dir` (not recursive), in sorted file order. When two
 * files give the same group name (`a.json`, `a.yaml`) the first wins and the
 * other is an error. A missing directory is an error problem, not a throw.
 */
export async function loadProfiles(
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ dir: string; groups: Map<string, Group>; problems: ConfigProblem[] }> {
  const groups = new Map<string, Group>();
  const problems: ConfigProblem[] = [];
  const listed = await listProfileFiles(dir);
  if (!listed.ok) return { dir, groups, problems: [wholeFileError(dir, listed.message)] };
  if (listed.files.length === 0) {
    problems.push({ file: dir, path: '', message: 'no profiles (*.json, *.yaml, *.yml) in this directory', severity: 'warning' });
  }

  const loaded = await Promise.all(listed.files.map((file) => loadProfileFile(file, env)));
  const winners = new Map<string, string>();
  listed.files.forEach((file, i) => {
    const name = groupNameOf(file);
    const winner = winners.get(name);
    if (winner !== undefined) {
      problems.push(duplicateGroupProblem(file, name, winner));
      return;
    }
    winners.set(name, file);
    const result = loaded[i];
    if (!result) return;
    problems.push(...result.problems);
    if (result.group) groups.set(name, result.group);
  });
  return { dir, groups, problems };
}

