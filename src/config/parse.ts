/**
 * Read step of read -> validate -> normalize: text to a plain JS value, or a
 * whole-file problem with line and column. Parser messages are never passed
 * through verbatim when they may quote the source, since a profile holds keys.
 */
import { parseDocument } from 'yaml';

export type ParseResult = { ok: true; value: unknown } | { ok: false; message: string };

/** Parses a profile by its extension (`.json`, else YAML). A leading BOM is ignored. */
export function parseProfileText(text: string, ext: string): ParseResult {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (source.trim() === '') return { ok: false, message: 'the file is empty' };
  return ext === '.json' ? parseJson(source) : parseYaml(source);
}

function parseJson(source: string): ParseResult {
  try {
    return { ok: true, value: JSON.parse(source) as unknown };
  } catch {
    // V8's message quotes a slice of the file (which may contain a key) and
    // has no position on Node 20, so locate the error ourselves.
    const found = locateJsonError(source);
    if (!found) return { ok: false, message: 'invalid JSON' };
    return { ok: false, message: `invalid JSON at ${lineColumn(source, found.offset)}: ${found.message}` };
  }
}

function parseYaml(source: string): ParseResult {
  // prettyErrors would append a source excerpt to the message; we add the position ourselves.
  const doc = parseDocument(source, { prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const more = doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more)` : '';
    return {
      ok: false,
      message: `invalid YAML at ${lineColumn(source, first.pos[0])}: ${redactQuoted(first.message)}${more}`,
    };
  }
  if (doc.contents === null) return { ok: false, message: 'the file is empty (only comments)' };
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 1000 }) as unknown };
  } catch (err) {
    // toJS throws on alias bombs and similar; the message names no source text.
    return { ok: false, message: `invalid YAML: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Some yaml messages quote a token; a token may be a key, so long quoted parts are hidden. */
function redactQuoted(message: string): string {
  return message.replace(/"[^"]{4,}"/g, '"…"');
}

/** 1-based `line L, column C` of a character offset. */
export function lineColumn(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}, column ${offset - lineStart + 1}`;
}

interface JsonSyntaxError {
  offset: number;
  message: string;
}

class JsonStop extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Finds where and why a JSON text is invalid, with messages that name at most
 * one character of the source. Only called after `JSON.parse` failed.
 */
export function locateJsonError(text: string): JsonSyntaxError | null {
  let i = 0;
  const stop = (message: string, at = i): never => {
    throw new JsonStop(at, message);
  };
  const here = (): string => {
    if (i >= text.length) return 'the end of the file';
    return text[i] === '"' ? 'a string' : JSON.stringify(text[i]);
  };
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++;
  };

  const parseString = (): void => {
    const start = i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) stop('unterminated string', start);
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const e = text[i + 1] ?? '';
        if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else if (e !== '' && '"\\/bfnrt'.includes(e)) i += 2;
        else stop('invalid escape sequence in string');
        continue;
      }
      if ((c ?? '') < ' ') stop('raw control character in string (write line breaks as \\n)');
      i++;
    }
  };

  const parseNumber = (): void => {
    const re = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) stop(`invalid number`);
    i += m?.[0].length ?? 0;
  };

  const parseList = (close: '}' | ']', item: () => void): void => {
    i++;
    skipSpace();
    if (text[i] === close) {
      i++;
      return;
    }
    for (;;) {
      item();
      skipSpace();
      if (text[i] === ',') {
        i++;
        skipSpace();
        if (text[i] === close) stop(`trailing comma before "${close}"`);
        continue;
      }
      if (text[i] === close) {
        i++;
        return;
      }
      stop(`expected "," or "${close}", got ${here()}`);
    }
  };

  const parseMember = (): void => {
    skipSpace();
    if (text[i] !== '"') stop(`expected a property name in double quotes, got ${here()}`);
    parseString();
    skipSpace();
    if (text[i] !== ':') stop(`expected ":" after a property name, got ${here()}`);
    i++;
    parseValue();
  };

  const parseValue = (): void => {
    skipSpace();
    const c = text[i];
    if (c === '{') return parseList('}', parseMember);
    if (c === '[') return parseList(']', parseValue);
    if (c === '"') return parseString();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return parseNumber();
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    stop(`expected a value, got ${here()}`);
  };

  try {
    parseValue();
    skipSpace();
    if (i < text.length) stop(`unexpected ${here()} after the end of the JSON value`);
    return null;
  } catch (err) {
    if (err instanceof JsonStop) return { offset: err.offset, message: err.message };
    return null; // e.g. nesting deep enough to exhaust the stack
  }
}
