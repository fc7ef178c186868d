/**
 * Endpoint probing for `test-endpoints` (SPEC §5): a minimal completion sent to
 * every endpoint through the failover engine itself, one endpoint per run, so
 * classification, timeouts and stream handling are exactly the proxy's.
 * Returns typed rows; rendering them is the command's business.
 */
import { EmbeddingsEngine } from '../core/embeddings/engine.js';
import { isEmbeddingsGroup, type EmbeddingsEndpoint } from '../core/embeddings/types.js';
import { FailoverEngine } from '../core/engine.js';
import { HealthTracker } from '../core/health.js';
import { redactSecrets } from '../core/redact.js';
import type { ChatRequest, Endpoint, FailureClass, Group } from '../core/types.js';
import { probeEmbeddingsEndpoint } from './embeddings.js';

/** `ok`, the failure class, `skipped` (unusable in the profile) or `cancelled` (the caller aborted). */
export type ProbeResult = 'ok' | FailureClass | 'skipped' | 'cancelled';

/** One probed endpoint. Field names are the `--json` output's. */
export interface ProbeRow {
  group: string;
  endpoint: string;
  /** Null for a skipped endpoint (its profile entry never became an endpoint). */
  model: string | null;
  result: ProbeResult;
  /** Upstream HTTP status of a failure, when there was one. */
  status: number | null;
  /** Whole attempt, from sending the request to the answer or the failure. */
  latency_ms: number | null;
  /** Time to the first token; only for streaming endpoints that produced one. */
  ttft_ms: number | null;
  /** Why it is not ok (short, key-redacted); `''` when ok. */
  reason: string;
}

export interface ProbeOptions {
  /** Probes in flight at once (default 8). */
  concurrency?: number;
  /** Aborting stops every probe; unfinished ones come back as `cancelled`. */
  signal?: AbortSignal;
  /** Called as each row is known (skipped rows first, then in completion order). */
  onRow?: (row: ProbeRow, index: number) => void;
}

export const DEFAULT_PROBE_CONCURRENCY = 8;
const REASON_MAX = 100;

/** The request a probe sends; `model` is the group name, as a client would send it. */
export function probeRequest(group: Group, endpoint: Endpoint): ChatRequest {
  return {
    model: group.name,
    messages: [{ role: 'user', content: 'Say OK.' }],
    max_tokens: 16,
    stream: endpoint.stream ?? true,
  };
}

interface Task {
  group: Group;
  endpoint: Endpoint;
  index: number;
}

/**
 * Probe every endpoint of `groups` (rows ordered by group name, then the
 * group's usable endpoints in file order, then its skipped ones). Uses its own
 * engine and a fresh health tracker, so probing never cools down anything a
 * server shares.
 */
export async function probeEndpoints(groups: Iterable<Group>, options: ProbeOptions = {}): Promise<ProbeRow[]> {
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_PROBE_CONCURRENCY);
  const sorted = [...groups].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const rows: ProbeRow[] = [];
  const tasks: Task[] = [];
  const skippedRows: Array<[ProbeRow, number]> = [];
  for (const group of sorted) {
    for (const endpoint of group.endpoints) {
      tasks.push({ group, endpoint, index: rows.length });
      rows.push(placeholder(group, endpoint));
    }
    for (const skipped of group.skipped) {
      const row: ProbeRow = {
        group: group.name,
        endpoint: skipped.name,
        model: null,
        result: 'skipped',
        status: null,
        latency_ms: null,
        ttft_ms: null,
        reason: shorten(skipped.reason),
      };
      skippedRows.push([row, rows.length]);
      rows.push(row);
    }
  }
  for (const [row, index] of skippedRows) options.onRow?.(row, index);

  const health = new HealthTracker();
  const engine = new FailoverEngine({ health });
  let embeddings: EmbeddingsEngine | undefined;
  try {
    await forEachBounded(tasks, concurrency, async (task) => {
      const { group, endpoint } = task;
      const row = isEmbeddingsGroup(group)
        ? await probeEmbeddingsEndpoint(
            (embeddings ??= new EmbeddingsEngine({ health })),
            group,
            endpoint as EmbeddingsEndpoint,
            placeholder(group, endpoint),
            shorten,
            options.signal,
          )
        : await probeOne(engine, group, endpoint, options.signal);
      rows[task.index] = row;
      options.onRow?.(row, task.index);
    });
  } finally {
    await Promise.all([engine.close(), embeddings?.close()]);
  }
  return rows;
}

/** Run `work` on every item, at most `concurrency` at once. */
export async function forEachBounded<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), items.length) }, worker));
}

function placeholder(group: Group, endpoint: Endpoint): ProbeRow {
  return {
    group: group.name,
    endpoint: endpoint.name,
    model: endpoint.model,
    result: 'cancelled',
    status: null,
    latency_ms: null,
    ttft_ms: null,
    reason: 'not probed',
  };
}

let probeCounter = 0;

/** One endpoint through the engine, as a one-endpoint group. */
async function probeOne(
  engine: FailoverEngine,
  group: Group,
  endpoint: Endpoint,
  signal: AbortSignal | undefined,
): Promise<ProbeRow> {
  const row = placeholder(group, endpoint);
  if (signal?.aborted) return row;
  const single: Group = { ...group, endpoints: [endpoint], skipped: [] };
  const body = probeRequest(group, endpoint);
  const streaming = body.stream === true;
  let commitTtft: number | null = null;
  for await (const event of engine.run({
    requestId: `probe-${process.pid}-${++probeCounter}`,
    group: single,
    body,
    ...(signal ? { signal } : {}),
  })) {
    switch (event.type) {
      case 'commit':
        commitTtft = event.ttftMs;
        break;
      case 'attempt_failed':
        row.result = event.failure.class;
        row.status = event.failure.status ?? null;
        row.latency_ms = event.ms;
        row.reason = shorten(event.failure.message);
        break;
      case 'done':
        row.result = 'ok';
        row.status = null;
        row.latency_ms = event.summary.attempts.at(-1)?.ms ?? event.summary.ms;
        row.reason = '';
        break;
      case 'cancelled':
        row.result = 'cancelled';
        row.reason = 'cancelled';
        break;
      default:
        break;
    }
  }
  // A non-streaming answer arrives whole: its "first token" is just the latency.
  if (streaming && commitTtft !== null) row.ttft_ms = commitTtft;
  return row;
}

/** One line, key-redacted, cut to a table-friendly length. */
export function shorten(message: string): string {
  const text = redactSecrets(message).replace(/\s+/g, ' ').trim();
  return text.length > REASON_MAX ? `${text.slice(0, REASON_MAX - 1)}…` : text;
}
