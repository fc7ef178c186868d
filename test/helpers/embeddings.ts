/**
 * Embeddings groups and fake embedding servers for tests. A server's vector
 * for an input is a pure function of (family, input), with values exact in
 * float32, so base64 round trips compare equal and a vector from another
 * family is recognisably different.
 */
import type { EmbeddingsEndpoint, EmbeddingsGroup } from '../../src/core/embeddings/types.js';
import { json, type Behaviour, type ReceivedRequest } from './fake-upstream.js';
import { endpoint, group } from './groups.js';

export const DIMS = 8;

/** The vector a server of `family` answers for `input`. */
export function vectorFor(family: string, input: unknown, dims = DIMS): number[] {
  const text = `${family}|${JSON.stringify(input)}`;
  let seed = 0;
  for (let i = 0; i < text.length; i++) seed = (seed * 31 + text.charCodeAt(i)) % 9973;
  return Array.from({ length: dims }, (_, k) => ((seed + k * 7) % 64) / 64 - 0.5);
}

function inputsOf(req: ReceivedRequest): unknown[] {
  const input = req.body.input;
  if (typeof input === 'string') return [input];
  if (Array.isArray(input) && input.every((t) => typeof t === 'number')) return [input];
  return Array.isArray(input) ? input : [];
}

export interface AnswerOptions {
  dims?: number;
  /** Answer this many vectors fewer than asked. */
  short?: number;
  /** Put this value into the first vector. */
  poison?: unknown;
  /** Reverse the data list (the indices stay right). */
  shuffle?: boolean;
  /** Give every item this index. */
  sameIndex?: number;
}

/** A well-formed (or deliberately broken) OpenAI embeddings answer to `req`. */
export function embeddingsAnswer(family: string, req: ReceivedRequest, options: AnswerOptions = {}): Behaviour {
  const inputs = inputsOf(req);
  let data = inputs.map((input, index) => ({
    object: 'embedding',
    index: options.sameIndex ?? index,
    embedding: vectorFor(family, input, options.dims) as unknown[],
  }));
  if (options.short) data = data.slice(0, data.length - options.short);
  if (options.poison !== undefined && data[0]) data[0].embedding[2] = options.poison;
  if (options.shuffle) data.reverse();
  const tokens = inputs.length * 3;
  return json({
    object: 'list',
    data,
    model: `${family}-upstream`,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}

/** A server that always answers well for `family`. */
export function embeddingsServer(
  family: string,
  options: AnswerOptions = {},
): (n: number, req: ReceivedRequest) => Behaviour {
  return (_n, req) => embeddingsAnswer(family, req, options);
}

export function embeddingsEndpoint(baseurl: string, overrides: Partial<EmbeddingsEndpoint> = {}): EmbeddingsEndpoint {
  return {
    ...endpoint(baseurl),
    model: 'emb-model',
    family: 'emb-model',
    sendDimensions: true,
    maxBatch: null,
    tokenInputs: true,
    ...overrides,
  };
}

export function embeddingsGroup(
  name: string,
  endpoints: EmbeddingsEndpoint[],
  overrides: Partial<EmbeddingsGroup> = {},
): EmbeddingsGroup {
  const family = endpoints[0]?.family ?? '';
  return {
    ...group(name, endpoints),
    kind: 'embeddings',
    endpoints,
    dimensions: DIMS,
    family,
    allowCrossFamily: false,
    cache: null,
    ...overrides,
  };
}
