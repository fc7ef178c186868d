/**
 * A client's `/v1/embeddings` body, checked against the group before any
 * upstream is contacted: what no endpoint of the group could take is the
 * client's 400, not a walk over every endpoint.
 */
import type { JsonObject } from '../types.js';
import type { EmbeddingInput, EmbeddingsEndpoint, EmbeddingsGroup, EmbeddingsRequest } from './types.js';

export type ParsedEmbeddingsRequest =
  { ok: true; request: EmbeddingsRequest } | { ok: false; message: string; param: string | null; code: string };

const OWN_FIELDS = new Set(['model', 'input', 'encoding_format', 'dimensions']);

/** Validate a parsed JSON body for `group`. Never throws. */
export function parseEmbeddingsRequest(value: unknown, group: EmbeddingsGroup): ParsedEmbeddingsRequest {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return bad('expected a JSON object', null);
  const body = value as JsonObject;
  const inputs = readInputs(body.input);
  if (typeof inputs === 'string') return bad(inputs, 'input');

  const format = body.encoding_format;
  if (format !== undefined && format !== null && format !== 'float' && format !== 'base64') {
    return bad(`encoding_format must be "float" or "base64", got ${JSON.stringify(format)}`, 'encoding_format');
  }
  const dimensions = body.dimensions;
  if (dimensions !== undefined && dimensions !== null && dimensions !== group.dimensions) {
    // Another length is another index: the group's dimension is what its vectors are checked against.
    return bad(
      `group '${group.name}' answers ${group.dimensions}-dimensional vectors; dimensions ${JSON.stringify(dimensions)} was asked`,
      'dimensions',
    );
  }
  if (inputs.some((i) => typeof i !== 'string') && !usableEndpoints(group).some((e) => e.tokenInputs)) {
    return {
      ok: false,
      message: `no endpoint of group '${group.name}' accepts token-id inputs (token_inputs: false); send text`,
      param: 'input',
      code: 'unsupported_input',
    };
  }
  const extra: Record<string, unknown> = {};
  for (const key in body) if (!OWN_FIELDS.has(key)) extra[key] = body[key];
  return {
    ok: true,
    request: { model: String(body.model), inputs, encodingFormat: format === 'base64' ? 'base64' : 'float', extra },
  };
}

/** The endpoints a request of `group` may use: its family's, or all when crossing families is allowed. */
export function usableEndpoints(group: EmbeddingsGroup): EmbeddingsEndpoint[] {
  return group.allowCrossFamily ? group.endpoints : group.endpoints.filter((e) => e.family === group.family);
}

/** The accepted forms: a string, strings, one token array, token arrays. Returns the problem as a string. */
function readInputs(input: unknown): EmbeddingInput[] | string {
  if (input === undefined || input === null)
    return 'input is required: a string, an array of strings or an array of token arrays';
  if (typeof input === 'string') return input === '' ? 'input must not be an empty string' : [input];
  if (!Array.isArray(input)) return `input must be a string or an array, got ${typeof input}`;
  if (input.length === 0) return 'input must not be an empty array';
  if (input.every((t) => typeof t === 'number')) {
    return isTokenArray(input) ? [input as number[]] : 'input: token ids must be non-negative integers';
  }
  const out: EmbeddingInput[] = [];
  for (let i = 0; i < input.length; i++) {
    const item: unknown = input[i];
    if (typeof item === 'string') {
      if (item === '') return `input[${i}] is an empty string`;
      out.push(item);
    } else if (Array.isArray(item)) {
      if (item.length === 0) return `input[${i}] is an empty token array`;
      if (!isTokenArray(item)) return `input[${i}]: token ids must be non-negative integers`;
      out.push(item as number[]);
    } else {
      return `input[${i}] must be a string or an array of token ids, got ${item === null ? 'null' : typeof item}`;
    }
  }
  return out;
}

function isTokenArray(items: unknown[]): boolean {
  return items.every((t) => typeof t === 'number' && Number.isInteger(t) && t >= 0);
}

function bad(message: string, param: string | null): ParsedEmbeddingsRequest {
  return { ok: false, message, param, code: 'invalid_request' };
}
