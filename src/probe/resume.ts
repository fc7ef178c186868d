/**
 * `test-endpoints --resume`: does each endpoint continue a prefilled assistant
 * message (SPEC §3.11)? A resume may prefill only where the answer is a
 * continuation: a server that ignores the prefill answers afresh, and
 * appending that would splice two answers. The check asks for a count to 30
 * with "1 … 10" already given as the assistant's partial answer and looks at
 * where the answer starts: at 11 (it continues), at 1 (it restarts), a 4xx
 * (it rejects the prefill), or elsewhere (unclear, with the words shown).
 */
import { FailoverEngine } from '../core/engine.js';
import { HealthTracker } from '../core/health.js';
import { describeFailure } from '../core/outcome.js';
import { continuesPrefill, withPrefill } from '../core/prefill.js';
import type { ChatRequest, Endpoint, Failure, Group } from '../core/types.js';
import { DEFAULT_PROBE_CONCURRENCY, forEachBounded, shorten, type ProbeRow } from './probe.js';

export const RESUME_PROMPT = 'Count from 1 to 30 separated by single spaces. Output only the numbers.';
/** The partial answer the endpoint is asked to continue. */
export const RESUME_PARTIAL = '1 2 3 4 5 6 7 8 9 10';

/** `continues` at 11, `restarts` at 1, `rejected` the prefill with a 4xx, or `unclear`. */
export type ResumeVerdict = 'continues' | 'restarts' | 'rejected' | 'unclear';

/** The fields `--resume` adds to a row (also to `--json`). */
export interface ResumeFields {
  /** Null when not checked: the endpoint failed the plain probe, was skipped, or the run was cancelled. */
  resume: ResumeVerdict | null;
  /** The answer's first words, the rejection, or why it was not checked. */
  resume_answer: string;
  /** Whether a resume prefills this endpoint today; null for a skipped endpoint. */
  prefill: boolean | null;
  /** Where today's setting comes from: the profile's `prefill`, or the default of the endpoint's type. */
  prefill_source: 'profile' | 'type' | null;
  /** What to put in the profile (`prefill: true | false`); null when the verdict does not tell. */
  suggested_prefill: boolean | null;
  /** The suggestion differs from today's setting. */
  prefill_differs: boolean;
}

export type ResumeRow = ProbeRow & ResumeFields;

export interface ResumeCheckOptions {
  /** Checks in flight at once (default 8). */
  concurrency?: number;
  signal?: AbortSignal;
}

/** The request the check sends: non-streaming, temperature 0, the partial answer prefilled. */
export function resumeRequest(group: Group): ChatRequest {
  const ask: ChatRequest = {
    model: group.name,
    messages: [{ role: 'user', content: RESUME_PROMPT }],
    temperature: 0,
    // Room for the rest of the count, and for a little reasoning before it.
    max_tokens: 300,
    stream: false,
  };
  return withPrefill(ask, RESUME_PARTIAL);
}

/** Where the answer to {@link resumeRequest} starts. */
export function judgeContinuation(content: string): { verdict: Exclude<ResumeVerdict, 'rejected'>; answer: string } {
  // Reasoning left inline (`reasoning: tags`) is not the answer.
  const text = content.replace(/^\s*<think>[\s\S]*?<\/think>/, '').trim();
  const answer = firstWords(text);
  const numbers = /^\d/.test(text) ? (text.match(/\d+/g) ?? []) : [];
  if (numbers[0] === '11') return { verdict: 'continues', answer };
  if (numbers[0] === '1' && (numbers[1] ?? '2') === '2') return { verdict: 'restarts', answer };
  return { verdict: 'unclear', answer };
}

/**
 * Check every endpoint whose plain probe in `rows` was ok; the other rows get
 * a null verdict. Rows keep their order. Uses its own engine and health
 * tracker, like the plain probe.
 */
export async function checkResume(groups: Iterable<Group>, rows: readonly ProbeRow[], options: ResumeCheckOptions = {}): Promise<ResumeRow[]> {
  const endpoints = new Map<string, { group: Group; endpoint: Endpoint }>();
  for (const group of groups) for (const endpoint of group.endpoints) endpoints.set(rowKey(group.name, endpoint.name), { group, endpoint });
  const out: ResumeRow[] = rows.map((row) => {
    const found = endpoints.get(rowKey(row.group, row.endpoint));
    const checked = found !== undefined && row.result === 'ok';
    const reason = row.result === 'skipped' ? 'not checked: skipped' : `not checked: the probe ${row.result === 'cancelled' ? 'was cancelled' : 'failed'}`;
    return { ...row, ...currentSetting(found?.endpoint), resume: null, resume_answer: checked ? 'not checked: cancelled' : reason, suggested_prefill: null, prefill_differs: false };
  });
  const tasks = out.flatMap((row, index) => {
    const found = endpoints.get(rowKey(row.group, row.endpoint));
    return found && row.result === 'ok' ? [{ ...found, index }] : [];
  });
  const engine = new FailoverEngine({ health: new HealthTracker() });
  try {
    await forEachBounded(tasks, options.concurrency ?? DEFAULT_PROBE_CONCURRENCY, async ({ group, endpoint, index }) => {
      const result = await checkOne(engine, group, endpoint, options.signal);
      if (result === null) return;
      const row = out[index]!;
      const suggested = result.verdict === 'continues' ? true : result.verdict === 'unclear' ? null : false;
      Object.assign(row, {
        resume: result.verdict,
        resume_answer: result.answer,
        suggested_prefill: suggested,
        prefill_differs: suggested !== null && suggested !== row.prefill,
      });
    });
  } finally {
    await engine.close();
  }
  return out;
}

const rowKey = (group: string, endpoint: string): string => `${group}\u0000${endpoint}`;

function currentSetting(endpoint: Endpoint | undefined): Pick<ResumeFields, 'prefill' | 'prefill_source'> {
  if (!endpoint) return { prefill: null, prefill_source: null };
  return { prefill: continuesPrefill(endpoint), prefill_source: typeof endpoint.prefill === 'boolean' ? 'profile' : 'type' };
}

let checkCounter = 0;

/** One endpoint, alone; null when cancelled. */
async function checkOne(
  engine: FailoverEngine,
  group: Group,
  endpoint: Endpoint,
  signal: AbortSignal | undefined,
): Promise<{ verdict: ResumeVerdict; answer: string } | null> {
  if (signal?.aborted) return null;
  let content: string | null = null;
  let failure: Failure | null = null;
  for await (const event of engine.run({
    requestId: `resume-probe-${process.pid}-${++checkCounter}`,
    group: { ...group, endpoints: [endpoint], skipped: [] },
    body: resumeRequest(group),
    ...(signal ? { signal } : {}),
  })) {
    if (event.type === 'completion') content = event.completion.choices[0]?.message.content ?? '';
    else if (event.type === 'attempt_failed') failure = event.failure;
    else if (event.type === 'cancelled') return null;
  }
  if (content !== null) return judgeContinuation(content);
  if (failure === null) return { verdict: 'unclear', answer: 'no answer' };
  const status = failure.status ?? 0;
  // A 4xx for a request the plain probe got through is the prefill refused;
  // being rate limited or timed out tells nothing about it.
  const refused = status >= 400 && status < 500 && status !== 408 && status !== 429;
  return { verdict: refused ? 'rejected' : 'unclear', answer: shorten(describeFailure(failure)) };
}

function firstWords(text: string, count = 8): string {
  const words = text.split(/\s+/).filter(Boolean);
  return shorten(words.slice(0, count).join(' ') + (words.length > count ? ' …' : ''));
}
