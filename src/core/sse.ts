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

export class SseDecoder {
  private readonly decoder = new TextDecoder('utf-8');
  /** Text of the current line not yet terminated. */
  private partial = '';
  /** The previous push ended with CR: an LF at the start of the next one belongs to it. */
  private skipLf = false;
  /** Data lines of the pending event, joined with `\n`; null when the event has none. */
  private data: string | null = null;

  /** Decodes one network read; returns the events it completed. */
  push(bytes: Uint8Array): SseEvent[] {
    const out: SseEvent[] = [];
    const text = this.decoder.decode(bytes, { stream: true });
    if (text !== '') this.feed(text, out);
    return out;
  }

  /** The stream ended: flushes a last line and an event that lacked its blank line. */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    const tail = this.decoder.decode();
    if (tail !== '') this.feed(tail, out);
    if (this.partial !== '') {
      const line = this.partial;
      this.partial = '';
      this.line(line, out);
    }
    this.dispatch(out);
    this.skipLf = false;
    return out;
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
