/**
 * Validate + normalize one endpoint of a profile (SPEC §2 endpoint table).
 * Every wrong field is reported, not only the first, and values that may be
 * secrets (apikey, headers) are described by kind only.
 */
import type { Endpoint, EndpointPrice, EndpointType } from '../core/types.js';
import { POOL_FIELDS, readKeyList, readSpreadOptions, type PoolKey } from './lanes.js';
import type { ProblemSink } from './problems.js';
import { describeKind, describeValue, keyPath } from './problems.js';

export const ENDPOINT_TYPES: readonly EndpointType[] = ['openai', 'openrouter', 'chutes'];
const DEFAULT_TIMEOUT_S = 60;

const KNOWN_FIELDS = [
  'name',
  'baseurl',
  'apikey',
  'model',
  'timeout',
  'type',
  'temperature',
  'max_tokens',
  'stream',
  'headers',
  'params',
  'think_open',
  'prefill',
  // kind: embeddings groups (embeddings.ts reads them).
  'family',
  'send_dimensions',
  'max_batch',
  'token_inputs',
  // Front doors (protocols/): replayed reasoning for endpoints that need it.
  'reasoning_replay',
  ...POOL_FIELDS,
  'price',
] as const;

/** An environment variable an endpoint needs but that is unset or empty. */
export interface MissingVar {
  /** Field path where it was referenced. */
  path: string;
  variable: string;
}

/** A valid endpoint before group-level naming; `missing` non-empty means it will be skipped. */
export interface EndpointDraft {
  endpoint: Endpoint;
  missing: MissingVar[];
  /** Path of the endpoint in the file, for later messages. */
  at: string;
  /** `apikey` written as a list: one lane per key (expanded by the group). */
  keys?: PoolKey[];
}

export interface EndpointContext {
  env: NodeJS.ProcessEnv;
  sink: ProblemSink;
  /** Values to mask in every message of the file (keys, header values). */
  secrets: Set<string>;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const VAR_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces `${VAR}` from the environment. An unset or empty variable is
 * reported as missing (and replaced by ''), because an empty key would only
 * turn into a 401 at request time.
 */
export function interpolateEnv(raw: string, env: NodeJS.ProcessEnv): { value: string; missing: string[] } {
  const missing: string[] = [];
  const value = raw.replace(VAR_REF, (_match, name: string) => {
    const found = env[name];
    if (found === undefined || found === '') {
      missing.push(name);
      return '';
    }
    return found;
  });
  return { value, missing };
}

/**
 * Remembers what must never be shown: the resolved value, the variables'
 * values and the literal parts. The raw `${VAR}` text itself is not secret,
 * and masking it would garble hints that quote it.
 */
function addSecret(ctx: EndpointContext, raw: string, resolved: string): void {
  ctx.secrets.add(resolved);
  raw.split(VAR_REF).forEach((part, i) => {
    // split() with a capture group alternates literal text and variable names.
    ctx.secrets.add(i % 2 === 0 ? part : (ctx.env[part] ?? ''));
  });
}

/**
 * Checks one endpoint; returns null when it has errors (the endpoint is
 * dropped, its siblings still serve). Problems go to `ctx.sink`.
 */
export function validateEndpoint(raw: unknown, at: string, ctx: EndpointContext): EndpointDraft | null {
  if (!isPlainObject(raw)) {
    ctx.sink.error(at, `expected an endpoint object with baseurl, apikey and model, got ${describeValue(raw)}`);
    return null;
  }
  const errorsBefore = ctx.sink.errorCount;
  const reader = new FieldReader(raw, at, ctx);

  const name = reader.name();
  const baseurl = readBaseUrl(reader);
  const keyList = Array.isArray(raw['apikey'])
    ? readKeyList(raw['apikey'], reader.path('apikey'), ctx, (text) => {
        const resolved = interpolateEnv(text, ctx.env);
        addSecret(ctx, text, resolved.value);
        return resolved;
      })
    : undefined;
  const apikey = Array.isArray(raw['apikey']) ? { value: '', missing: [] } : reader.interpolated('apikey', { secret: true, allowEmpty: true });
  const spread = readSpreadOptions(raw, at, ctx.sink);
  const model = reader.interpolated('model', { secret: false, allowEmpty: false });
  const timeout = reader.number('timeout', (n) => n > 0, 'a positive number of seconds') ?? DEFAULT_TIMEOUT_S;
  const type = reader.oneOf('type', ENDPOINT_TYPES) ?? 'openai';
  const temperature = reader.number('temperature', (n) => n >= 0, 'a number >= 0');
  const maxTokens = reader.number('max_tokens', (n) => Number.isInteger(n) && n > 0, 'a positive integer');
  const stream = reader.boolean('stream');
  const thinkOpen = reader.boolean('think_open');
  const prefill = raw['prefill'] === 'auto' ? 'auto' : reader.boolean('prefill');
  const reasoningReplay = reader.boolean('reasoning_replay');
  const headers = readHeaders(reader);
  const params = reader.object('params') ?? {};
  const price = readPrice(reader);
  warnUnknownFields(raw, at, ctx.sink);

  if (ctx.sink.errorCount > errorsBefore) return null;
  if (apikey === undefined || baseurl === undefined || model === undefined || headers === undefined) return null;

  const endpoint: Endpoint = {
    // With a variable missing, the default name shows the model as written rather than a fragment.
    name: name ?? `${type}:${model.missing.length > 0 ? String(raw['model']) : model.value}`,
    type,
    baseurl: baseurl.value,
    apikey: apikey.value,
    model: model.value,
    timeoutMs: Math.round(timeout * 1000),
    headers: headers.value,
    params,
  };
  if (temperature !== undefined) endpoint.temperature = temperature;
  if (maxTokens !== undefined) endpoint.max_tokens = maxTokens;
  if (stream !== undefined) endpoint.stream = stream;
  if (thinkOpen !== undefined) endpoint.thinkOpen = thinkOpen;
  if (prefill !== undefined) endpoint.prefill = prefill;
  if (reasoningReplay !== undefined) endpoint.reasoningReplay = reasoningReplay;
  Object.assign(endpoint, spread);
  if (price !== undefined) endpoint.price = price;

  const missing = [...apikey.missing, ...baseurl.missing, ...model.missing, ...headers.missing];
  return keyList ? { endpoint, missing, at, keys: keyList } : { endpoint, missing, at };
}

interface Interpolated<T> {
  value: T;
  missing: MissingVar[];
}

/** Reads typed fields of one endpoint object, reporting each wrong one with its path. */
class FieldReader {
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly at: string,
    private readonly ctx: EndpointContext,
  ) {}

  path(key: string): string {
    return keyPath(this.at, key);
  }

  /** YAML writes an empty optional field as null; treat it as not set. */
  private optional(key: string): unknown {
    const value = this.raw[key];
    return value === null ? undefined : value;
  }

  interpolated(
    key: 'apikey' | 'model' | 'baseurl',
    opts: { secret: boolean; allowEmpty: boolean },
  ): Interpolated<string> | undefined {
    const value = this.raw[key];
    const path = this.path(key);
    if (value === undefined) {
      this.ctx.sink.error(path, `required: ${REQUIRED_HINT[key]}`);
      return undefined;
    }
    if (typeof value !== 'string') {
      const got = opts.secret ? describeKind(value) : describeValue(value);
      this.ctx.sink.error(path, `expected a string${opts.allowEmpty ? ' ("" for a keyless server)' : ''}, got ${got}`);
      return undefined;
    }
    const { value: resolved, missing } = interpolateEnv(value, this.ctx.env);
    if (opts.secret) addSecret(this.ctx, value, resolved);
    if (!opts.allowEmpty && resolved.trim() === '' && missing.length === 0) {
      this.ctx.sink.error(path, 'must not be empty');
      return undefined;
    }
    return { value: resolved, missing: missing.map((variable) => ({ path, variable })) };
  }

  number(key: string, valid: (n: number) => boolean, expected: string): number | undefined {
    const value = this.optional(key);
    if (value === undefined) return undefined;
    if (typeof value === 'number' && Number.isFinite(value) && valid(value)) return value;
    this.ctx.sink.error(this.path(key), `expected ${expected}, got ${describeValue(value)}`);
    return undefined;
  }

  boolean(key: string): boolean | undefined {
    const value = this.optional(key);
    if (value === undefined || typeof value === 'boolean') return value;
    this.ctx.sink.error(this.path(key), `expected true or false, got ${describeValue(value)}`);
    return undefined;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    const value = this.optional(key);
    if (value === undefined) return undefined;
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    this.ctx.sink.error(this.path(key), `expected one of ${allowed.join(', ')}, got ${describeValue(value)}`);
    return undefined;
  }

  object(key: string): Record<string, unknown> | undefined {
    const value = this.optional(key);
    if (value === undefined) return undefined;
    if (isPlainObject(value)) return value;
    this.ctx.sink.error(this.path(key), `expected an object (a mapping of field: value), got ${describeKind(value)}`);
    return undefined;
  }

  name(): string | undefined {
    const value = this.optional('name');
    if (value === undefined) return undefined;
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
    this.ctx.sink.error(this.path('name'), `expected a non-empty string, got ${describeValue(value)}`);
    return undefined;
  }

  get context(): EndpointContext {
    return this.ctx;
  }
}

const REQUIRED_HINT: Record<'apikey' | 'model' | 'baseurl', string> = {
  apikey: 'the upstream API key, e.g. "${OPENROUTER_API_KEY}" ("" for a keyless local server)',
  model: 'the upstream model name',
  baseurl: 'the OpenAI-compatible base URL, e.g. https://openrouter.ai/api/v1',
};

function readBaseUrl(reader: FieldReader): Interpolated<string> | undefined {
  const read = reader.interpolated('baseurl', { secret: false, allowEmpty: false });
  // With a variable missing the URL is incomplete; the endpoint is skipped anyway.
  if (read === undefined || read.missing.length > 0) return read;
  const path = reader.path('baseurl');
  const sink = reader.context.sink;
  let url: URL;
  try {
    url = new URL(read.value);
  } catch {
    sink.error(path, `expected an http(s) URL such as https://openrouter.ai/api/v1, got ${describeValue(read.value)}`);
    return undefined;
  }
  if (url.password !== '') reader.context.secrets.add(decodeURIComponent(url.password));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    sink.error(path, `expected an http or https URL, got the scheme "${url.protocol.slice(0, -1)}"`);
    return undefined;
  }
  const value = read.value.replace(/\/+$/, '');
  if (/\/chat\/completions$/.test(value)) {
    // Requests go to `<baseurl>/chat/completions`; the full URL would 404 on every call.
    sink.error(path, 'is a full /chat/completions URL; give the base URL without that suffix');
    return undefined;
  }
  return { value, missing: [] };
}

/** `price: {input, output}` in USD per million tokens; both are needed so a cost is never half a guess. */
function readPrice(reader: FieldReader): EndpointPrice | undefined {
  const raw = reader.object('price');
  if (raw === undefined) return undefined;
  const sink = reader.context.sink;
  const at = reader.path('price');
  const read = (key: 'input' | 'output'): number | undefined => {
    const value = raw[key];
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
    const why = value === undefined ? 'required' : `expected a number >= 0, got ${describeValue(value)}`;
    sink.error(keyPath(at, key), `${why} (USD per million ${key} tokens)`);
    return undefined;
  };
  const input = read('input');
  const output = read('output');
  for (const key of Object.keys(raw)) {
    if (key !== 'input' && key !== 'output') sink.warning(keyPath(at, key), 'unknown field, ignored (price has input and output)');
  }
  return input !== undefined && output !== undefined ? { input, output } : undefined;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function readHeaders(reader: FieldReader): Interpolated<Record<string, string>> | undefined {
  const raw = reader.object('headers');
  if (raw === undefined) return { value: {}, missing: [] };
  const { env, sink } = reader.context;
  const value: Record<string, string> = {};
  const missing: MissingVar[] = [];
  let ok = true;
  for (const [name, headerValue] of Object.entries(raw)) {
    const path = keyPath(reader.path('headers'), name);
    if (!HEADER_NAME.test(name)) {
      sink.error(path, 'is not a valid HTTP header name');
      ok = false;
      continue;
    }
    if (typeof headerValue !== 'string') {
      // Header values may carry credentials: show the kind, never the value.
      sink.error(path, `expected a string, got ${describeKind(headerValue)}`);
      ok = false;
      continue;
    }
    const resolved = interpolateEnv(headerValue, env);
    addSecret(reader.context, headerValue, resolved.value);
    value[name] = resolved.value;
    missing.push(...resolved.missing.map((variable) => ({ path, variable })));
  }
  return ok ? { value, missing } : undefined;
}

function warnUnknownFields(raw: Record<string, unknown>, at: string, sink: ProblemSink): void {
  for (const key of Object.keys(raw)) {
    if ((KNOWN_FIELDS as readonly string[]).includes(key)) continue;
    // Never quote the value: a misspelt `api_key` holds a real key.
    const guess = suggestField(key, KNOWN_FIELDS);
    sink.warning(keyPath(at, key), `unknown field, ignored${guess ? ` (did you mean "${guess}"?)` : ''}`);
  }
}

/** `base_url`, `baseURL`, `api-key`, `maxTokens` → the field they were meant as. */
export function suggestField(key: string, known: readonly string[]): string | undefined {
  const squash = (s: string): string => s.toLowerCase().replace(/[_-]/g, '');
  return known.find((k) => squash(k) === squash(key));
}
