/**
 * `test-endpoints` for an embeddings endpoint: one one-word input through the
 * embeddings engine, so the answer is judged exactly as the proxy judges it —
 * a vector of another length than the group declares is a failure here too.
 */
import type { EmbeddingsEngine } from '../core/embeddings/engine.js';
import type { EmbeddingsEndpoint, EmbeddingsGroup } from '../core/embeddings/types.js';
import type { ProbeRow } from './probe.js';

let probeCounter = 0;

/** Probe `endpoint` alone (its own family, no cache); `row` is the placeholder to fill. */
export async function probeEmbeddingsEndpoint(
  engine: EmbeddingsEngine,
  group: EmbeddingsGroup,
  endpoint: EmbeddingsEndpoint,
  row: ProbeRow,
  shorten: (message: string) => string,
  signal?: AbortSignal,
): Promise<ProbeRow> {
  if (signal?.aborted) return row;
  const single: EmbeddingsGroup = {
    ...group,
    endpoints: [endpoint],
    skipped: [],
    family: endpoint.family,
    allowCrossFamily: false,
    cache: null,
  };
  const outcome = await engine.run({
    requestId: `probe-embeddings-${process.pid}-${++probeCounter}`,
    group: single,
    request: { model: group.name, inputs: ['hello'], encodingFormat: 'float', extra: {} },
    ...(signal ? { signal } : {}),
  });
  const record = outcome.event.summary.attempts.at(-1);
  switch (outcome.kind) {
    case 'done':
      return { ...row, result: 'ok', status: null, latency_ms: record?.ms ?? outcome.event.summary.ms, reason: '' };
    case 'failed':
      if (!record || record.class === null) return { ...row, result: 'cancelled', reason: 'not probed' };
      return {
        ...row,
        result: record.class,
        status: record.status,
        latency_ms: record.ms,
        reason: shorten(record.message ?? ''),
      };
    case 'cancelled':
      return { ...row, result: 'cancelled', reason: 'cancelled' };
  }
}
