/**
 * Parsing a client's request body whatever it looks like (SPEC §4 "Request
 * repair"): JSON.parse first, jsonrepair only when that fails, then the checks
 * jsonrepair cannot do for us — it happily "completes" a truncated body, turns
 * plain text into a JSON string and NDJSON into an array.
 */
import { jsonrepair } from 'jsonrepair';
import type { ChatMessage, ChatRequest, JsonObject } from '../core/types.js';

export type ParsedBody =
  | { ok: true; request: ChatRequest; repaired: boolean }
  | { ok: false; message: string; param: string | null };

export type Route = 'chat' | 'completions';

/** Stateless for one-shot decodes, so one decoder serves every request. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Parse, repair when needed, and validate a request body. Never throws. */
export function parseClientBody(raw: Buffer, route: Route, declaredLength?: number): ParsedBody {
  if (declaredLength !== undefined && raw.length < declaredLength) {
    return fail(`the body has ${raw.length} bytes but Content-Length says ${declaredLength}`);
  }
  let text: string;
  try {
    text = UTF8.decode(raw);
  } catch {
    return fail('the body is not valid UTF-8');
  }
  if (text.trim() === '') return fail('the body is empty; expected a JSON object');
  // JSON.parse takes any depth, but the upstream body is built with the
  // recursive JSON.stringify (and jsonrepair recurses too): a deep enough
  // body would blow the stack there and cost a 500 instead of a 400.
  if (nestsDeeperThan(text, MAX_NESTING)) return fail(`the JSON nests deeper than ${MAX_NESTING} levels`);

  let value: unknown;
  let repaired = false;
  try {
    value = JSON.parse(text);
  } catch (parseError) {
    const truncated = looksTruncated(text);
    if (truncated) return fail(`the JSON ends before the object is complete (${describeParseError(parseError)})`);
    try {
      value = JSON.parse(jsonrepair(text));
      repaired = true;
    } catch {
      return fail(`the body is not valid JSON and could not be repaired: ${describeParseError(parseError)}`);
    }
  }
  return validate(value, route, repaired);
}

/** Far deeper than any real request (tool schemas nest a few dozen levels). */
export const MAX_NESTING = 512;

/** Bracket depth outside double-quoted strings; a cheap scan, no parse. */
export function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > limit) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/**
 * jsonrepair closes whatever is open at the end of its input, so a body cut
 * short would be served as if complete. A real request ends with `}` — after
 * optional whitespace, a `;`, a comment or a closing code fence.
 */
function looksTruncated(text: string): boolean {
  const tail = text
    .replace(/```\s*$/, '')
    .replace(/\/\*[\s\S]*?\*\/\s*$/, '')
    .replace(/\/\/[^\n]*\s*$/, '')
    .trimEnd()
    .replace(/;$/, '')
    .trimEnd();
  return tail.length > 0 && !tail.endsWith('}') && tail.trimStart().startsWith('{');
}

function describeParseError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function validate(value: unknown, route: Route, repaired: boolean): ParsedBody {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const what = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    return fail(`the body must be a JSON object, got ${what}`);
  }
  const body = value as JsonObject;
  if (typeof body.model !== 'string' || body.model === '') {
    return fail("missing required field 'model' (a group name)", 'model');
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    return fail("'stream' must be a boolean", 'stream');
  }
  if (body.stream === null) delete body.stream;

  const prompt = promptText(body.prompt);
  if (prompt === false) return fail("'prompt' must be a string (or an array holding one string)", 'prompt');

  if (route === 'completions') {
    if (prompt === undefined) return fail("missing required field 'prompt'", 'prompt');
    delete body.prompt;
    body.messages = [{ role: 'user', content: prompt }];
  } else {
    const messages = body.messages;
    const empty = messages === undefined || messages === null || (Array.isArray(messages) && messages.length === 0);
    if (empty && prompt !== undefined) {
      delete body.prompt;
      body.messages = [{ role: 'user', content: prompt }];
    } else if (empty) {
      return fail("missing required field 'messages' (or a 'prompt' string)", 'messages');
    } else if (!Array.isArray(messages)) {
      return fail("'messages' must be an array of messages", 'messages');
    } else {
      const bad = messages.findIndex((m) => !isMessage(m));
      if (bad >= 0) return fail(`messages[${bad}] must be an object with a string 'role'`, `messages[${bad}]`);
    }
  }
  if (body.stream_options !== undefined && body.stream_options !== null && typeof body.stream_options !== 'object') {
    return fail("'stream_options' must be an object", 'stream_options');
  }
  return { ok: true, request: body as ChatRequest, repaired };
}

/** A prompt as text; undefined when absent; false when present but unusable. */
function promptText(prompt: unknown): string | undefined | false {
  if (prompt === undefined || prompt === null) return undefined;
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') return prompt[0];
  return false;
}

function isMessage(value: unknown): value is ChatMessage {
  return value !== null && typeof value === 'object' && typeof (value as ChatMessage).role === 'string';
}

function fail(message: string, param: string | null = null): ParsedBody {
  return { ok: false, message, param };
}
