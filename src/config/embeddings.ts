/**
 * The embeddings options of a profile: group `kind: embeddings`, `dimensions`,
 * `allow_cross_family`, `cache`, and per endpoint `family`,
 * `send_dimensions`, `max_batch`, `token_inputs`. A chat group that carries
 * them gets a warning; an embeddings group with a wrong one is refused whole,
 * since a guessed dimension or family would end up in someone's index.
 */
import type { EmbeddingsEndpoint, EmbeddingsGroup } from '../core/embeddings/types.js';
import type { Endpoint, Group } from '../core/types.js';
import { isPlainObject } from './endpoint.js';
import { describeValue, keyPath, type ProblemSink } from './problems.js';

export const EMBEDDINGS_GROUP_OPTIONS = ['kind', 'dimensions', 'allow_cross_family', 'cache'] as const;
export const EMBEDDINGS_ENDPOINT_FIELDS = ['family', 'send_dimensions', 'max_batch', 'token_inputs'] as const;

const DEFAULT_CACHE_MB = 64;

/** An endpoint as read, with where it was and what it was in the file. */
export interface EndpointSource {
  endpoint: Endpoint;
  at: string;
  raw: unknown;
}

/**
 * `group` unchanged for a chat group, the embeddings group for
 * `kind: embeddings`, or null when an embeddings option is wrong.
 * `sources` are the file's valid endpoints in file order, skipped ones included.
 */
export function readEmbeddingsGroup(
  group: Group,
  options: Record<string, unknown>,
  sources: EndpointSource[],
  sink: ProblemSink,
): Group | EmbeddingsGroup | null {
  const kind = options['kind'] ?? 'chat';
  if (kind !== 'chat' && kind !== 'embeddings') {
    sink.error('kind', `expected chat or embeddings, got ${describeValue(kind)}`);
    return null;
  }
  if (kind === 'chat') {
    for (const key of EMBEDDINGS_GROUP_OPTIONS) {
      if (key !== 'kind' && options[key] !== undefined)
        sink.warning(key, 'only used by kind: embeddings groups; ignored');
    }
    for (const { at, raw } of sources) {
      for (const key of EMBEDDINGS_ENDPOINT_FIELDS) {
        if (isPlainObject(raw) && raw[key] !== undefined)
          sink.warning(keyPath(at, key), 'only used in kind: embeddings groups; ignored');
      }
    }
    return group;
  }

  const before = sink.errorCount;
  const dimensions = options['dimensions'];
  if (dimensions === undefined || dimensions === null) {
    sink.error('dimensions', 'required for kind: embeddings: the length of every vector the group answers (e.g. 1536)');
  } else if (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1) {
    sink.error('dimensions', `expected a positive integer, got ${describeValue(dimensions)}`);
  }
  const cross = options['allow_cross_family'] ?? false;
  if (typeof cross !== 'boolean')
    sink.error('allow_cross_family', `expected true or false, got ${describeValue(cross)}`);
  const cache = readCache(options['cache'], sink);
  const endpoints = new Map<Endpoint, EmbeddingsEndpoint>();
  for (const source of sources) {
    const endpoint = readEndpoint(source, sink);
    if (endpoint) endpoints.set(source.endpoint, endpoint);
  }
  if (sink.errorCount > before || cache === undefined) return null;

  // The first endpoint in the file decides the space even when its key is unset today:
  // an environment change must never move a group to another family.
  const family = endpoints.get(sources[0]?.endpoint as Endpoint)?.family ?? '';
  if (cross !== true) {
    for (const source of sources) {
      const other = endpoints.get(source.endpoint)!;
      if (other.family !== family) {
        sink.warning(
          keyPath(source.at, 'family'),
          `family '${other.family}' is not the group's '${family}' (its first endpoint's): this endpoint is never used unless allow_cross_family: true`,
        );
      }
    }
  }
  return {
    ...group,
    kind: 'embeddings',
    endpoints: group.endpoints.map((e) => endpoints.get(e)!),
    dimensions: dimensions as number,
    family,
    allowCrossFamily: cross === true,
    cache,
  };
}

function readCache(raw: unknown, sink: ProblemSink): EmbeddingsGroup['cache'] | undefined {
  if (raw === undefined || raw === null || raw === false) return null;
  if (raw === true) return { maxBytes: DEFAULT_CACHE_MB * 1024 * 1024 };
  if (!isPlainObject(raw)) {
    sink.error('cache', `expected true, false or { max_mb }, got ${describeValue(raw)}`);
    return undefined;
  }
  const mb = raw['max_mb'] ?? DEFAULT_CACHE_MB;
  for (const key of Object.keys(raw))
    if (key !== 'max_mb') sink.warning(keyPath('cache', key), 'unknown field, ignored');
  if (typeof mb !== 'number' || !Number.isFinite(mb) || mb <= 0) {
    sink.error('cache.max_mb', `expected a positive number of megabytes, got ${describeValue(mb)}`);
    return undefined;
  }
  return { maxBytes: Math.round(mb * 1024 * 1024) };
}

function readEndpoint({ endpoint, at, raw }: EndpointSource, sink: ProblemSink): EmbeddingsEndpoint | null {
  const fields = isPlainObject(raw) ? raw : {};
  let ok = true;
  const family = fields['family'] ?? (endpoint.model || String(fields['model']));
  if (typeof family !== 'string' || family.trim() === '') {
    sink.error(keyPath(at, 'family'), `expected a non-empty string, got ${describeValue(family)}`);
    ok = false;
  }
  const flag = (key: string): boolean => {
    const value = fields[key] ?? true;
    if (typeof value === 'boolean') return value;
    sink.error(keyPath(at, key), `expected true or false, got ${describeValue(value)}`);
    ok = false;
    return true;
  };
  const sendDimensions = flag('send_dimensions');
  const tokenInputs = flag('token_inputs');
  const maxBatch = fields['max_batch'] ?? null;
  if (maxBatch !== null && (typeof maxBatch !== 'number' || !Number.isInteger(maxBatch) || maxBatch < 1)) {
    sink.error(
      keyPath(at, 'max_batch'),
      `expected a positive integer (inputs per upstream call), got ${describeValue(maxBatch)}`,
    );
    ok = false;
  }
  if (!ok) return null;
  // The same object, extended: health and the redactor know endpoints by identity.
  return Object.assign(endpoint, {
    family: (family as string).trim(),
    sendDimensions,
    maxBatch: maxBatch as number | null,
    tokenInputs,
  });
}
