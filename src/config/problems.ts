/**
 * Config problems are data, not log lines: the loader returns them and the
 * caller decides whether to print, log or exit (STYLE lesson 4).
 */

export interface ConfigProblem {
  /** The file (or directory) the problem is about, as the loader was given it. */
  file: string;
  /** Field path inside the file, e.g. `endpoints[2].timeout`; `''` for the whole file. */
  path: string;
  message: string;
  severity: 'error' | 'warning';
  /** Set when an endpoint is skipped because these `${VAR}`s are unset: callers may sum these up per group. */
  missingEnv?: string[];
}

/**
 * Renders a problem as `file: path: message` (the path part is left out for
 * whole-file problems), the form users grep for and editors can jump to.
 */
export function formatProblem(p: ConfigProblem): string {
  return p.path === '' ? `${p.file}: ${p.message}` : `${p.file}: ${p.path}: ${p.message}`;
}

/** Collects the problems of one file so validators only name the field. */
export class ProblemSink {
  readonly problems: ConfigProblem[] = [];
  constructor(readonly file: string) {}

  error(path: string, message: string): void {
    this.problems.push({ file: this.file, path, message, severity: 'error' });
  }

  warning(path: string, message: string, missingEnv?: string[]): void {
    this.problems.push({ file: this.file, path, message, severity: 'warning', ...(missingEnv ? { missingEnv } : {}) });
  }

  get errorCount(): number {
    return this.problems.filter((p) => p.severity === 'error').length;
  }
}

/** `endpoints` + `[2]` → `endpoints[2]`; `''` + `[2]` → `[2]` (bare-array files). */
export function indexPath(base: string, index: number): string {
  return `${base}[${index}]`;
}

/** Joins a key onto a path; keys that are not identifiers are quoted so the path stays readable. */
export function keyPath(base: string, key: string): string {
  if (!/^[A-Za-z_][\w-]*$/.test(key)) return `${base}[${JSON.stringify(key)}]`;
  return base === '' ? key : `${base}.${key}`;
}

const MAX_SHOWN = 60;

/**
 * How a wrong value is shown in a message: short values verbatim, long ones
 * cut, containers by kind. Never use it on a field that may hold a secret.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    const shown = JSON.stringify(value);
    return shown.length > MAX_SHOWN ? `${shown.slice(0, MAX_SHOWN - 4)}…" (${value.length} chars)` : shown;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return describeKind(value);
}

/** The kind of a value only (`a string`, `an array`…), for fields that may hold secrets. */
export function describeKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/**
 * Last line of defence: whatever a message quotes, a known secret is masked.
 * Secrets shorter than 4 characters are not masked, as they would shred
 * ordinary words (and are no real key anyway).
 */
export function redactSecrets(problems: ConfigProblem[], secrets: Iterable<string>): ConfigProblem[] {
  const masks = [...new Set(secrets)].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
  if (masks.length === 0) return problems;
  return problems.map((p) => {
    let message = p.message;
    let path = p.path;
    for (const secret of masks) {
      message = message.split(secret).join('***');
      path = path.split(secret).join('***');
    }
    return message === p.message && path === p.path ? p : { ...p, message, path };
  });
}
