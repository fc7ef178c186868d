/** Small helpers the front doors share. */
import { randomBytes } from 'node:crypto';

export type Obj = Record<string, unknown>;

export function isObj(value: unknown): value is Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `prefix` + 24 hex characters, the shape both APIs use for their ids. */
export function newId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`;
}

/** One SSE event with an `event:` line, as both protocols send them. */
export function sseEvent(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Parses tool-call arguments; what is not a JSON object becomes `{}` rather than an error. */
export function parseArguments(text: string): Obj {
  if (text.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(text);
    return isObj(value) ? value : {};
  } catch {
    return {};
  }
}

/** A client error before the engine runs. */
export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}
