/**
 * Validate + normalize one parsed profile into a `Group` (SPEC §2). The
 * on-disk shape (bare array or `{ endpoints, ...options }`) and the runtime
 * `Group` stay two types; every problem is collected with its field path.
 */
import type { CooldownOptions, Group, ReasoningMode, SkippedEndpoint } from '../core/types.js';
import { EMBEDDINGS_GROUP_OPTIONS, readEmbeddingsGroup, type EndpointSource } from './embeddings.js';
import type { EndpointDraft } from './endpoint.js';
import { isPlainObject, suggestField, validateEndpoint } from './endpoint.js';
import { expandLanes, readSpreadGroupOptions, SPREAD_GROUP_OPTIONS } from './lanes.js';
import type { ConfigProblem } from './problems.js';
import { ProblemSink, describeValue, indexPath, keyPath, redactSecrets } from './problems.js';
import { readEarlyStart } from './early-start.js';
import { readResilienceOptions, RESILIENCE_OPTIONS, type ResilienceOptions } from './resilience.js';

const REASONING_MODES: readonly ReasoningMode[] = ['field', 'tags', 'strip'];
export const DEFAULT_COOLDOWN: Readonly<CooldownOptions> = { failures: 3, seconds: 30 };

const GROUP_OPTIONS = ['endpoints', 'reasoning', 'cooldown', 'early_start_s', ...RESILIENCE_OPTIONS, ...EMBEDDINGS_GROUP_OPTIONS, ...SPREAD_GROUP_OPTIONS] as const;

export interface GroupResult {
  /** Null when the file is unusable as a whole (bad shape or options, or no valid endpoint). */
  group: Group | null;
  problems: ConfigProblem[];
}

/** Turns a parsed profile into a group; `name` and `file` come from the file name. */
export function validateGroup(raw: unknown, name: string, file: string, env: NodeJS.ProcessEnv): GroupResult {
  const sink = new ProblemSink(file);
  const secrets = new Set<string>();
  const group = buildGroup(raw, name, file, { env, sink, secrets });
  return { group, problems: redactSecrets(sink.problems, secrets) };
}

interface Ctx {
  env: NodeJS.ProcessEnv;
  sink: ProblemSink;
  secrets: Set<string>;
}

function buildGroup(raw: unknown, name: string, file: string, ctx: Ctx): Group | null {
  const shape = splitShape(raw, ctx.sink);
  if (!shape) return null;
  const options = readGroupOptions(shape.options, ctx.sink);

  const drafts: EndpointDraft[] = [];
  const sources: EndpointSource[] = [];
  shape.endpoints.forEach((item, i) => {
    const draft = validateEndpoint(item, indexPath(shape.base, i), ctx);
    if (draft) drafts.push(draft);
    if (draft) sources.push({ endpoint: draft.endpoint, at: draft.at, raw: item });
  });
  assignUniqueNames(drafts, ctx.sink);
  const { endpoints, skipped } = separateSkipped(expandLanes(drafts, ctx.sink), ctx.sink);

  if (shape.endpoints.length === 0) {
    ctx.sink.warning(shape.base, 'no endpoints: every request to this group will fail');
  } else if (drafts.length === 0) {
    // Serving an empty group would fail every request; a reload keeps the last good version instead.
    ctx.sink.error(shape.base, 'no valid endpoint: every endpoint has errors');
    return null;
  }
  // Group options shape every request, so a wrong one invalidates the file rather than being guessed.
  if (!options) return null;
  return readEmbeddingsGroup({ name, source: file, endpoints, skipped, ...options }, shape.options, sources, ctx.sink);
}

interface Shape {
  endpoints: unknown[];
  /** Path prefix of the endpoint list: `''` for a bare array, `endpoints` for the object form. */
  base: string;
  options: Record<string, unknown>;
}

function splitShape(raw: unknown, sink: ProblemSink): Shape | null {
  if (Array.isArray(raw)) return { endpoints: raw, base: '', options: {} };
  if (!isPlainObject(raw)) {
    sink.error('', `expected a list of endpoints or an object with an "endpoints" list, got ${describeValue(raw)}`);
    return null;
  }
  const endpoints = raw['endpoints'];
  if (endpoints === undefined) {
    const looksLikeEndpoint = 'baseurl' in raw || 'model' in raw || 'apikey' in raw;
    sink.error(
      '',
      looksLikeEndpoint
        ? 'this is a single endpoint; a profile is a list of endpoints (wrap it in [ ] or put it under "endpoints:")'
        : 'expected a list of endpoints or an object with an "endpoints" list; "endpoints" is missing',
    );
    return null;
  }
  if (!Array.isArray(endpoints)) {
    sink.error('endpoints', `expected a list of endpoints, got ${describeValue(endpoints)}`);
    return null;
  }
  return { endpoints, base: 'endpoints', options: raw };
}

type GroupOptions = Pick<Group, 'reasoning' | 'cooldown' | 'earlyStartS' | 'strategy' | 'stickyTtlMs'> & ResilienceOptions;

/** Reads the object-form options; null when one of them is wrong. */
function readGroupOptions(raw: Record<string, unknown>, sink: ProblemSink): GroupOptions | null {
  let ok = true;
  let reasoning: ReasoningMode = 'field';
  const mode = raw['reasoning'];
  if (mode !== undefined && mode !== null) {
    if (typeof mode === 'string' && (REASONING_MODES as readonly string[]).includes(mode)) {
      reasoning = mode as ReasoningMode;
    } else {
      sink.error('reasoning', `expected one of ${REASONING_MODES.join(', ')}, got ${describeValue(mode)}`);
      ok = false;
    }
  }
  const cooldown = readCooldown(raw['cooldown'], sink);
  if (!cooldown) ok = false;
  const resilience = readResilienceOptions(raw, sink);
  const earlyStart = readEarlyStart(raw['early_start_s'], sink);
  if (earlyStart === false) ok = false;
  const spread = readSpreadGroupOptions(raw, sink);

  for (const key of Object.keys(raw)) {
    if ((GROUP_OPTIONS as readonly string[]).includes(key)) continue;
    const guess = suggestField(key, [...GROUP_OPTIONS]);
    sink.warning(keyPath('', key), `unknown group option, ignored${guess ? ` (did you mean "${guess}"?)` : ''}`);
  }
  if (!ok || !cooldown || !resilience || !spread) return null;
  const options: GroupOptions = { reasoning, cooldown, ...resilience, ...spread };
  if (earlyStart !== undefined && earlyStart !== false) options.earlyStartS = earlyStart;
  return options;
}

function readCooldown(raw: unknown, sink: ProblemSink): CooldownOptions | null {
  if (raw === undefined || raw === null) return { ...DEFAULT_COOLDOWN };
  if (!isPlainObject(raw)) {
    sink.error('cooldown', `expected an object { failures, seconds }, got ${describeValue(raw)}`);
    return null;
  }
  let ok = true;
  const failures = raw['failures'] ?? DEFAULT_COOLDOWN.failures;
  if (typeof failures !== 'number' || !Number.isInteger(failures) || failures < 1) {
    sink.error('cooldown.failures', `expected an integer >= 1, got ${describeValue(failures)}`);
    ok = false;
  }
  const seconds = raw['seconds'] ?? DEFAULT_COOLDOWN.seconds;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
    sink.error('cooldown.seconds', `expected a positive number of seconds, got ${describeValue(seconds)}`);
    ok = false;
  }
  for (const key of Object.keys(raw)) {
    if (key !== 'failures' && key !== 'seconds') sink.warning(keyPath('cooldown', key), 'unknown field, ignored');
  }
  return ok ? { failures: failures as number, seconds: seconds as number } : null;
}

/**
 * Names label endpoints in logs, headers and cooldown state, so they must be
 * unique in a group: later duplicates get `#2`, `#3`… and a warning.
 */
function assignUniqueNames(drafts: EndpointDraft[], sink: ProblemSink): void {
  const firstAt = new Map<string, string>();
  const taken = new Set(drafts.map((d) => d.endpoint.name));
  for (const draft of drafts) {
    const name = draft.endpoint.name;
    const first = firstAt.get(name);
    if (first === undefined) {
      firstAt.set(name, draft.at);
      continue;
    }
    let n = 2;
    while (taken.has(`${name}#${n}`)) n++;
    const unique = `${name}#${n}`;
    taken.add(unique);
    draft.endpoint.name = unique;
    sink.warning(keyPath(draft.at, 'name'), `duplicate name "${name}" (also ${first}); renamed "${unique}"`);
  }
}

/** Endpoints whose `${VAR}` is unset are kept out of rotation, with a warning naming the variable. */
function separateSkipped(drafts: EndpointDraft[], sink: ProblemSink): Pick<Group, 'endpoints' | 'skipped'> {
  const endpoints: Group['endpoints'] = [];
  const skipped: SkippedEndpoint[] = [];
  for (const { endpoint, missing, at } of drafts) {
    if (missing.length === 0) {
      endpoints.push(endpoint);
      continue;
    }
    const vars = [...new Set(missing.map((m) => m.variable))];
    skipped.push({ name: endpoint.name, reason: `missing env ${vars.join(', ')}` });
    const subject = vars.length === 1 ? `environment variable ${vars[0]} is` : `environment variables ${vars.join(', ')} are`;
    sink.warning(missing[0]?.path ?? at, `${subject} not set or empty; endpoint "${endpoint.name}" is skipped`, vars);
  }
  return { endpoints, skipped };
}
