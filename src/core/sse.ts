/**
 * Bytes -> server-sent events, following the WHATWG event-stream rules the way
 * openai-node's decoder does (`src/core/streaming.ts`): bytes may be split
 * anywhere (even inside a UTF-8 character or between CR and LF), lines end in
 * LF, CRLF or CR, `data:` lines accumulate until a blank line dispatches them.
 *
 * One deliberate extension: a line that is no SSE field but starts with `{` or
 * `[` is reported at once as `bare`, because Chutes writes its mid-stream
 * failure as `{"error": "..."}` without `data:` and without a blank line; a
 * strict parser would drop it and the stream would just look truncated.
 */

export type SseEvent =
  | { kind: 'data'; data: string }
  | { kind: 'comment'; text: string }
  | { kind: 'bare'; line: string };

const LF = 10;
const COLON = 58;
const SPACE = 32;

/**
 * Shared by every stream: a TextDecoder used with `{ stream: true }` makes
 * Node allocate an ICU converter, ~2 KB of native memory per open stream.
 * Without `stream` it keeps no state; a read that ends inside a character
 * keeps those bytes for the next one instead (see `completeLength`).
 */
const UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });

export class SseDecoder {
  /** The first bytes of a character the last read cut off (at most 3). */
  private carry: Uint8Array | null = null;
  /** Text was decoded: a BOM is dropped only as the stream's first character, as TextDecoder does. */
  private started = false;
  /** Text of the current line not yet terminated. */
  private partial = '';
  /** The previous push ended with CR: an LF at the start of the next one belongs to it. */
  private skipLf = false;
  /** Data lines of the pending event, joined with `\n`; null when the event has none. */
  private data: string | null = null;

  /** Decodes one network read; returns the events it completed. */
  push(bytes: Uint8Array): SseEvent[] {
    const out: SseEvent[] = [];
    let input = bytes;
    if (this.carry !== null) {
      input = new Uint8Array(this.carry.length + bytes.length);
      input.set(this.carry);
      input.set(bytes, this.carry.length);
      this.carry = null;
    }
    const complete = completeLength(input);
    if (complete < input.length) this.carry = input.slice(complete);
    const text = this.decode(input.subarray(0, complete));
    if (text !== '') this.feed(text, out);
    return out;
  }

  /** The stream ended: flushes a last line and an event that lacked its blank line. */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    // A character cut off by the end of the stream becomes U+FFFD.
    const tail = this.carry === null ? '' : this.decode(this.carry);
    this.carry = null;
    if (tail !== '') this.feed(tail, out);
    if (this.partial !== '') {
      const line = this.partial;
      this.partial = '';
      this.line(line, out);
    }
    this.dispatch(out);
    this.skipLf = false;
    this.started = false;
    return out;
  }

  private decode(bytes: Uint8Array): string {
    if (bytes.length === 0) return '';
    let text = UTF8.decode(bytes);
    if (!this.started && text !== '') {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  }

  private feed(text: string, out: SseEvent[]): void {
    const n = text.length;
    let start = 0;
    if (this.skipLf) {
      this.skipLf = false;
      if (text.charCodeAt(0) === LF) start = 1;
    }
    let lf = text.indexOf('\n', start);
    let cr = text.indexOf('\r', start);
    while (lf !== -1 || cr !== -1) {
      let end: number;
      let next: number;
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        end = lf;
        next = lf + 1;
      } else {
        end = cr;
        if (cr + 1 < n) {
          next = text.charCodeAt(cr + 1) === LF ? cr + 2 : cr + 1;
        } else {
          next = n;
          this.skipLf = true;
        }
      }
      let line = text.slice(start, end);
      if (this.partial !== '') {
        line = this.partial + line;
        this.partial = '';
      }
      this.line(line, out);
      start = next;
      if (lf !== -1 && lf < start) lf = text.indexOf('\n', start);
      if (cr !== -1 && cr < start) cr = text.indexOf('\r', start);
    }
    if (start < n) this.partial += text.slice(start);
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      this.dispatch(out);
      return;
    }
    if (line.charCodeAt(0) === COLON) {
      out.push({ kind: 'comment', text: line.slice(1).trim() });
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    switch (field) {
      case 'data': {
        let value = '';
        if (colon !== -1) {
          const from = line.charCodeAt(colon + 1) === SPACE ? colon + 2 : colon + 1;
          value = line.slice(from);
        }
        this.data = this.data === null ? value : this.data + '\n' + value;
        return;
      }
      case 'event':
      case 'id':
      case 'retry':
        // Accepted and ignored: an `event: error` still delivers its data,
        // and the caller inspects that payload for `error`.
        return;
      default: {
        const first = line.trimStart().charCodeAt(0);
        if (first === 0x7b /* { */ || first === 0x5b /* [ */) out.push({ kind: 'bare', line });
      }
    }
  }

  private dispatch(out: SseEvent[]): void {
    if (this.data === null) return;
    out.push({ kind: 'data', data: this.data });
    this.data = null;
  }
}

/**
 * How many of `bytes` end on a character boundary: all of them, unless the
 * last lead byte still waits for continuation bytes. Cutting before a lead
 * byte never changes the decoded text (the decoder starts afresh there, an
 * unfinished sequence before it is U+FFFD either way).
 */
function completeLength(bytes: Uint8Array): number {
  const n = bytes.length;
  // A character has at most 4 bytes: only a lead byte among the last 3 can be waiting.
  for (let i = n - 1; i >= 0 && i >= n - 3; i--) {
    const b = bytes[i]!;
    if (b < 0x80) return n;
    if (b >= 0xc0) {
      const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return n - i < length ? i : n;
    }
  }
  return n;
}
