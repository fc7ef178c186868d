/**
 * Judging an upstream's 2xx embeddings body before anything reaches the
 * client: a wrong count, length, number or index would be written into
 * someone's vector store, so each of them is `invalid_response` and fails
 * over. Also the base64 form OpenAI uses (little-endian float32).
 */
import { parseAnswerBody } from '../classify.js';
import type { Failure, JsonObject } from '../types.js';

/** A sub-batch's vectors, in input order. */
export interface ValidAnswer {
  /** The parsed arrays themselves (checked, not copied). */
  vectors: number[][];
  model: string | null;
  promptTokens: number;
  totalTokens: number;
}

export type AnswerVerdict = { answer: ValidAnswer } | { failure: Failure };

/** `text` must hold exactly `count` vectors of `dimensions` finite numbers, indexed 0..count-1. */
export function judgeEmbeddingsBody(
  text: string,
  contentType: string,
  count: number,
  dimensions: number,
): AnswerVerdict {
  const parsed = parseAnswerBody(text, contentType);
  if ('failure' in parsed) return parsed;
  const body = parsed.payload;
  if (!Array.isArray(body.data)) return invalid('response has no data list');
  const data = body.data as unknown[];
  if (data.length !== count)
    return invalid(`${data.length} vector${data.length === 1 ? '' : 's'} for ${count} input${count === 1 ? '' : 's'}`);

  const vectors: Array<number[] | undefined> = new Array<number[] | undefined>(count);
  // Either every item names its index or none does (then the list order is the input order).
  const indexed = data.some((item) => (item as JsonObject | null)?.index !== undefined);
  for (let i = 0; i < count; i++) {
    const item = data[i] as JsonObject | null;
    if (!item || typeof item !== 'object') return invalid(`data[${i}] is not an object`);
    let index = i;
    if (indexed) {
      if (typeof item.index !== 'number' || !Number.isInteger(item.index) || item.index < 0 || item.index >= count) {
        return invalid(`data[${i}].index is ${JSON.stringify(item.index)}, expected 0..${count - 1}`);
      }
      index = item.index;
      if (vectors[index] !== undefined) return invalid(`index ${index} appears twice`);
    }
    const vector = readVector(item.embedding);
    if (typeof vector === 'string') return invalid(`data[${i}].embedding ${vector}`);
    if (vector.length !== dimensions)
      return invalid(`data[${i}] has ${vector.length} dimensions, the group declares ${dimensions}`);
    vectors[index] = vector;
  }
  const usage = (body.usage ?? {}) as JsonObject;
  const promptTokens = tokenCount(usage.prompt_tokens);
  return {
    answer: {
      vectors: vectors as number[][],
      model: typeof body.model === 'string' && body.model !== '' ? body.model : null,
      promptTokens,
      totalTokens: usage.total_tokens === undefined ? promptTokens : tokenCount(usage.total_tokens),
    },
  };
}

/** Numbers (what we ask for) or a base64 string (what some servers send anyway); a string says what is wrong. */
function readVector(embedding: unknown): number[] | string {
  if (typeof embedding === 'string') {
    const bytes = Buffer.from(embedding, 'base64');
    if (bytes.length % 4 !== 0) return 'is base64 that is not a whole number of float32 values';
    const out = new Array<number>(bytes.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
    return out.every(Number.isFinite) ? out : 'holds a value that is not a finite number';
  }
  if (!Array.isArray(embedding)) return 'is missing or not a list of numbers';
  for (let i = 0; i < embedding.length; i++) {
    const n: unknown = embedding[i];
    // JSON has no NaN: servers send null, "NaN" or a bare NaN token (which is not JSON and fails above).
    if (typeof n !== 'number' || !Number.isFinite(n)) return `[${i}] is ${JSON.stringify(n)}, not a finite number`;
  }
  return embedding as number[];
}

function tokenCount(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;
}

function invalid(message: string): { failure: Failure } {
  return { failure: { class: 'invalid_response', message } };
}

/** OpenAI's `encoding_format: "base64"`: the vector as little-endian float32 bytes. */
export function toBase64(vector: readonly number[]): string {
  const bytes = Buffer.allocUnsafe(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i]!, i * 4);
  return bytes.toString('base64');
}
