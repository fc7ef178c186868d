/**
 * One profile file: which directory entries are group files, and the read ->
 * parse -> validate pipeline for one of them.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Group } from '../core/types.js';
import { parseProfileText } from './parse.js';
import type { ConfigProblem } from './problems.js';
import { validateGroup } from './validate.js';

export const PROFILE_EXTENSIONS = ['.json', '.yaml', '.yml'] as const;

/**
 * Whether a directory entry is a group file: a known extension and not a
 * hidden (`.x`) or disabled (`_x`) file, which also keeps editor swap and
 * backup files out.
 */
export function isProfileFileName(name: string): boolean {
  if (name.startsWith('.') || name.startsWith('_')) return false;
  const ext = path.extname(name).toLowerCase();
  return (PROFILE_EXTENSIONS as readonly string[]).includes(ext) && name.length > ext.length;
}

/** `profiles/think-stream.yaml` → `think-stream`. */
export function groupNameOf(file: string): string {
  const base = path.basename(file);
  return base.slice(0, base.length - path.extname(base).length);
}

/**
 * Reads, validates and normalizes one profile file. `group` is null when the
 * file cannot be used at all (unreadable, unparsable, wrong shape or options,
 * or every endpoint invalid); endpoints with errors are dropped individually.
 */
export async function loadProfileFile(
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<{ group: Group | null; problems: ConfigProblem[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { group: null, problems: [wholeFileError(file, `cannot read the file (${errorCode(err)})`)] };
  }
  const parsed = parseProfileText(text, path.extname(file).toLowerCase());
  if (!parsed.ok) return { group: null, problems: [wholeFileError(file, parsed.message)] };
  return validateGroup(parsed.value, groupNameOf(file), file, env);
}

type Listing = { ok: true; files: string[] } | { ok: false; message: string };

/** The group files of `dir`, sorted, as `dir/name` paths. */
export async function listProfileFiles(dir: string): Promise<Listing> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') return { ok: false, message: 'profiles directory not found' };
    if (code === 'ENOTDIR') return { ok: false, message: 'not a directory (expected a profiles directory)' };
    return { ok: false, message: `cannot read the profiles directory (${code})` };
  }
  const candidates = names.filter(isProfileFileName).sort();
  const files: string[] = [];
  for (const name of candidates) {
    const file = path.join(dir, name);
    // stat (not the dirent type) so symlinked profiles count as files.
    const isFile = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    if (isFile) files.push(file);
  }
  return { ok: true, files };
}

export function wholeFileError(file: string, message: string): ConfigProblem {
  return { file, path: '', message, severity: 'error' };
}

export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(err);
}

/** The second file for one group name (`a.json` beside `a.yaml`) is never loaded. */
export function duplicateGroupProblem(file: string, name: string, winner: string): ConfigProblem {
  return wholeFileError(file, `group "${name}" is already defined by ${path.basename(winner)}; this file is ignored`);
}
