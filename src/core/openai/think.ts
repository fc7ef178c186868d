/**
 * `<think>…</think>` handling for upstreams that put reasoning inside `content`
 * (vLLM/SGLang without a reasoning parser, Groq `raw`, many R1-style chutes).
 * R1 chat templates open `<think>` in the prompt, so the answer often carries
 * only the closing tag (deepseek-ai/DeepSeek-R1#352): streams learn that from
 * the endpoint's `thinkOpen`, complete texts detect it.
 */

export type Segment = { kind: 'reasoning' | 'content'; text: string };

const OPEN = '<think>';
const CLOSE = '</think>';

const enum State {
  /** Nothing but whitespace yet: a `<think>` here opens reasoning. */
  Start,
  /** Just inside a reasoning block: leading whitespace (and a redundant `<think>`) is dropped. */
  Opening,
  Reasoning,
  /** Right after `</think>`: whitespace is dropped. */
  AfterClose,
  Content,
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function skipSpace(s: string, i: number): number {
  const n = s.length;
  while (i < n && isSpace(s.charCodeAt(i))) i++;
  return i;
}

/**
 * Streaming splitter: feed content deltas, get reasoning and content segments.
 * Only a `<think>` at the very start of the content opens a block (as Roo/Kilo's
 * matcher does), so a `<think>` quoted later in an answer stays content. Text
 * that may be the start of a tag is held back until the next push decides it.
 */
export class ThinkSplitter {
  private state: State;
  /** Text held back (leading whitespace or a partial tag). */
  private held = '';
  private out: Segment[] = [];

  constructor(opts: { startInside: boolean }) {
    this.state = opts.startInside ? State.Opening : State.Start;
  }

  /** True once everything further is plain content (lets callers skip the splitter). */
  get passthrough(): boolean {
    return this.state === State.Content;
  }

  push(text: string): Segment[] {
    if (text === '') return [];
    if (this.state === State.Content) return [{ kind: 'content', text }];
    const s = this.held === '' ? text : this.held + text;
    this.held = '';
    const out: Segment[] = [];
    this.out = out;
    this.run(s);
    return out;
  }

  /** The content ended: releases held-back text as what it would have been. */
  end(): Segment[] {
    const held = this.held;
    this.held = '';
    if (held === '') return [];
    switch (this.state) {
      case State.Start:
        this.state = State.Content;
        return [{ kind: 'content', text: held }];
      case State.Opening:
      case State.Reasoning:
        return [{ kind: 'reasoning', text: held }];
      default:
        return [{ kind: 'content', text: held }];
    }
  }

  private emit(kind: Segment['kind'], text: string): void {
    if (text === '') return;
    const last = this.out[this.out.length - 1];
    if (last !== undefined && last.kind === kind) last.text += text;
    else this.out.push({ kind, text });
  }

  private run(s: string): void {
    const n = s.length;
    let i = 0;
    for (;;) {
      switch (this.state) {
        case State.Start: {
          const j = skipSpace(s, i);
          if (j === n) {
            this.held = s.slice(i);
            return;
          }
          if (s.startsWith(OPEN, j)) {
            i = j + OPEN.length;
            this.state = State.Opening;
          } else if (n - j < OPEN.length && OPEN.startsWith(s.slice(j))) {
            this.held = s.slice(i);
            return;
          } else {
            this.state = State.Content;
          }
          break;
        }
        case State.Opening: {
          i = skipSpace(s, i);
          if (i === n) return;
          if (s.startsWith(OPEN, i)) {
            i += OPEN.length;
          } else if (n - i < OPEN.length && OPEN.startsWith(s.slice(i))) {
            this.held = s.slice(i);
            return;
          } else {
            this.state = State.Reasoning;
          }
          break;
        }
        case State.Reasoning: {
          const k = s.indexOf(CLOSE, i);
          if (k !== -1) {
            this.emit('reasoning', s.slice(i, k));
            i = k + CLOSE.length;
            this.state = State.AfterClose;
            break;
          }
          const h = partialTagStart(s, i, CLOSE);
          this.emit('reasoning', s.slice(i, h));
          if (h < n) this.held = s.slice(h);
          return;
        }
        case State.AfterClose: {
          i = skipSpace(s, i);
          if (i === n) return;
          this.state = State.Content;
          break;
        }
        case State.Content:
          if (i < n) this.emit('content', i === 0 ? s : s.slice(i));
          return;
      }
    }
  }
}

/** Where a suffix of `s[from..]` that is a proper prefix of `tag` starts (s.length if none). */
function partialTagStart(s: string, from: number, tag: string): number {
  const n = s.length;
  for (let p = Math.max(from, n - tag.length + 1); p < n; p++) {
    if (s.charCodeAt(p) === 0x3c /* < */ && tag.startsWith(s.slice(p))) return p;
  }
  return n;
}

/**
 * Splits a complete text: `<think>r</think>rest` (leading whitespace allowed),
 * the opening-tag-missing form `r</think>rest`, or plain content. An unclosed
 * leading `<think>` (a truncated answer) is all reasoning.
 */
export function splitThinkText(text: string): { reasoning: string; content: string } {
  const close = text.indexOf(CLOSE);
  const start = skipSpace(text, 0);
  if (text.startsWith(OPEN, start)) {
    const from = skipSpace(text, start + OPEN.length);
    if (close === -1) return { reasoning: text.slice(from), content: '' };
    return {
      reasoning: close > from ? text.slice(from, close) : '',
      content: text.slice(skipSpace(text, close + CLOSE.length)),
    };
  }
  if (close === -1) return { reasoning: '', content: text };
  const open = text.indexOf(OPEN);
  if (open !== -1 && open < close) return { reasoning: '', content: text };
  return {
    reasoning: text.slice(start, close),
    content: text.slice(skipSpace(text, close + CLOSE.length)),
  };
}
