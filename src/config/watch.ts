/**
 * Hot reload (SPEC §2): `serve` swaps a group when its file changes and keeps
 * the last good version when an edit breaks it. This module only says what
 * happened to which group; the caller swaps, keeps and logs.
 */
import { readdirSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Group } from '../core/types.js';
import { duplicateGroupProblem, groupNameOf, isProfileFileName, listProfileFiles, loadProfileFile } from './files.js';
import type { ConfigProblem } from './problems.js';

export type ProfileUpdate =
  /** The file loaded; `problems` may still hold warnings or errors of dropped endpoints. */
  | { kind: 'reloaded'; group: Group; problems: ConfigProblem[] }
  /** No file defines the group any more. */
  | { kind: 'removed'; name: string; file: string }
  /** The file is unusable as a whole: keep serving the last good version of the group. */
  | { kind: 'error'; name: string; file: string; problems: ConfigProblem[] };

export interface WatchOptions {
  /** Quiet time per group before reloading; editors save in several steps. Default 100 ms. */
  debounceMs?: number;
  /** The watch could not start or broke (e.g. the directory was deleted), or `onUpdate` threw. */
  onError?: (err: Error) => void;
}

export interface ProfileWatcher {
  close(): void;
}

/**
 * Watches `dir` (not recursive) and reports each changed group once its file
 * has been quiet for `debounceMs`. Changes are keyed by group name, so
 * `a.json` and `a.yaml` resolve the same way as in `loadProfiles`. Never
 * throws: a watch that cannot start is reported through `onError` and the
 * returned handle does nothing.
 */
export function watchProfiles(
  dir: string,
  env: NodeJS.ProcessEnv,
  onUpdate: (update: ProfileUpdate) => void,
  options: WatchOptions = {},
): ProfileWatcher {
  const debounceMs = options.debounceMs ?? 100;
  const timers = new Map<string, NodeJS.Timeout>();
  // Bumped on every event; a reload whose generation is stale is dropped, so a
  // slow read can never overwrite the result of a newer edit.
  const generations = new Map<string, number>();
  // Groups known to exist (name → file), so 'removed' is only said of groups the caller has.
  const present = initialGroups(dir);
  let closed = false;

  const reportError = (err: unknown): void => {
    const error = err instanceof Error ? err : new Error(String(err));
    if (options.onError) options.onError(error);
    else throw error;
  };

  const refresh = async (name: string, generation: number): Promise<void> => {
    const update = await computeUpdate(dir, env, name, present.get(name));
    if (closed || generations.get(name) !== generation || update === null) return;
    if (update.kind === 'removed') present.delete(name);
    else present.set(name, update.kind === 'error' ? update.file : update.group.source);
    onUpdate(update);
  };

  const schedule = (name: string): void => {
    clearTimeout(timers.get(name));
    const generation = (generations.get(name) ?? 0) + 1;
    generations.set(name, generation);
    const timer = setTimeout(() => {
      timers.delete(name);
      refresh(name, generation).catch(reportError);
    }, debounceMs);
    timers.set(name, timer);
  };

  const onEvent = (filename: string | null): void => {
    if (closed) return;
    // Some platforms do not say which file changed: look at every group.
    if (filename === null) {
      for (const name of new Set([...present.keys(), ...initialGroups(dir).keys()])) schedule(name);
      return;
    }
    const base = path.basename(filename);
    if (isProfileFileName(base)) schedule(groupNameOf(base));
  };

  let watcher: FSWatcher;
  try {
    // Not persistent: a profile watch alone must not keep the process alive at shutdown.
    watcher = watch(dir, { persistent: false }, (_event, filename) => onEvent(filename));
  } catch (err) {
    reportError(err);
    return { close() {} };
  }

  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const timer of timers.values()) clearTimeout(timer);
    timers.clear();
    watcher.close();
  };
  watcher.on('error', (err) => {
    close();
    reportError(err);
  });
  return { close };
}

/** The groups in `dir` now (first file per name in sorted order), read synchronously at watch start. */
function initialGroups(dir: string): Map<string, string> {
  const groups = new Map<string, string>();
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter(isProfileFileName).sort();
  } catch {
    // A missing directory has no groups; the watch itself reports the failure.
  }
  for (const name of names) {
    const group = groupNameOf(name);
    if (!groups.has(group)) groups.set(group, path.join(dir, name));
  }
  return groups;
}

/** What happened to group `name`, or null when there is nothing to tell (a file that came and went). */
async function computeUpdate(
  dir: string,
  env: NodeJS.ProcessEnv,
  name: string,
  lastFile: string | undefined,
): Promise<ProfileUpdate | null> {
  const listed = await listProfileFiles(dir);
  const files = listed.ok ? listed.files.filter((f) => groupNameOf(f) === name) : [];
  const [winner, ...losers] = files;
  if (winner === undefined) return lastFile === undefined ? null : { kind: 'removed', name, file: lastFile };

  const { group, problems } = await loadProfileFile(winner, env);
  const duplicates = losers.map((file) => duplicateGroupProblem(file, name, winner));
  const all = [...problems, ...duplicates];
  return group ? { kind: 'reloaded', group, problems: all } : { kind: 'error', name, file: winner, problems: all };
}
