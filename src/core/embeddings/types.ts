/**
 * Shapes of embeddings groups (`kind: embeddings`) and of the OpenAI
 * `/v1/embeddings` wire. They extend the chat `Group` and `Endpoint` rather
 * than changing them, so the chat engine never sees an embeddings option.
 */
import type { Endpoint, Group } from '../types.js';

/** An endpoint of an embeddings group, its embedding options applied. */
export interface EmbeddingsEndpoint extends Endpoint {
  /** Vectors of two endpoints are interchangeable only within one family (default: the endpoint's `model`). */
  family: string;
  /** Send the group's `dimensions` upstream; off for servers that reject the field. */
  sendDimensions: boolean;
  /** Most inputs per upstream call; null = no limit of our own. */
  maxBatch: number | null;
  /** The server accepts token-id arrays as input (many OpenAI-compatible servers take text only). */
  tokenInputs: boolean;
}

export interface EmbeddingsCacheOptions {
  /** Upper bound of the vectors kept, in bytes. */
  maxBytes: number;
}

export interface EmbeddingsGroup extends Group {
  kind: 'embeddings';
  endpoints: EmbeddingsEndpoint[];
  /** Length of every vector this group answers; checked on every answer and sent upstream. */
  dimensions: number;
  /**
   * The embedding space of the group: its first endpoint's family. Endpoints
   * of other families are never tried unless `allowCrossFamily`.
   */
  family: string;
  /** Dangerous: lets a request fail over to another embedding space. */
  allowCrossFamily: boolean;
  /** Null = no cache (the default). */
  cache: EmbeddingsCacheOptions | null;
}

/** Whether a group serves `/v1/embeddings` rather than chat. */
export function isEmbeddingsGroup(group: Group): group is EmbeddingsGroup {
  return (group as { kind?: unknown }).kind === 'embeddings';
}

/** One input: a text, or token ids. */
export type EmbeddingInput = string | number[];

/** A client's embeddings request after validation; unknown fields are kept and passed upstream. */
export interface EmbeddingsRequest {
  model: string;
  inputs: EmbeddingInput[];
  encodingFormat: 'float' | 'base64';
  /** Client fields other than model, input, encoding_format and dimensions (e.g. `user`). */
  extra: Record<string, unknown>;
}

export interface EmbeddingItem {
  object: 'embedding';
  index: number;
  /** Numbers for `float`, little-endian float32 bytes in base64 for `base64`. */
  embedding: number[] | string;
}

/** The answer, in OpenAI's shape. */
export interface EmbeddingsResponse {
  object: 'list';
  data: EmbeddingItem[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}
