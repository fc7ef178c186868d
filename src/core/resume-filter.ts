/**
 * Fitting a resumed attempt's output onto what a streaming client already has
 * (SPEC §3.4, §3.11), so that the client never receives text from two
 * different answers.
 *
 * Every resume is verified: the new attempt must first reproduce text the
 * client already has, and only what follows it is sent on.
 *
 * - `restart`: the endpoint answers from scratch; it must repeat the whole
 *   delivered answer before anything new counts.
 * - `prefill`: the endpoint was asked to continue the delivered answer minus
 *   its last words (the held-back tail); its continuation must start by
 *   reproducing that tail. An endpoint that ignored the prefill and answers
 *   afresh fails the check at its first words — unless it regenerates the
 *   same answer, which is then handled as a restart.
 *
 * Text that could still go either way is held back, never sent on a guess.
 */
import type { ChatCompletionChunk, Delta } from './types.js';

export type ResumeMode = 'prefill' | 'restart';

/** How a broken answer is to be resumed on one endpoint. */
export interface ResumePlan {
  mode: ResumeMode;
  /** The assistant message sent as prefill (empty for a restart). */
  prefill: string;
}

/** What the filter made of one chunk of the new attempt. */
export type FilterResult = { kind: 'emit'; chunk: ChatCompletionChunk | null } | { kind: 'diverged'; why: string };

/** At least this much of the delivered answer is held back from a prefill, to be reproduced. */
const MIN_TAIL_CHARS = 12;
/** A tail longer than this proves little more and delays the answer. */
const MAX_TAIL_CHARS = 64;

/**
 * The resume for an endpoint that continues prefills (`continues`) or not,
 * after `content` was delivered. The prefill ends before a whitespace so the
 * continuation starts on a word, as a model's next token naturally would.
 */
export function planResume(content: string, continues: boolean): ResumePlan {
  if (!continues || content.length <= MIN_TAIL_CHARS) return { mode: 'restart', prefill: '' };
  const latest = content.length - MIN_TAIL_CHARS;
  const earliest = Math.max(0, content.length - MAX_TAIL_CHARS);
  let cut = -1;
  for (let i = latest; i > earliest; i--) {
    if (isSpace(content.charCodeAt(i)) && !isSpace(content.charCodeAt(i - 1))) {
      cut = i;
      break;
    }
  }
  if (cut === -1) {
    // No word boundary near the end (e.g. CJK text): cut between characters, never inside a surrogate pair.
    cut = latest;
    if (isLowSurrogate(content.charCodeAt(cut))) cut -= 1;
  }
  return cut <= 0 ? { mode: 'restart', prefill: '' } : { mode: 'prefill', prefill: content.slice(0, cut) };
}

/** One way the new output may line up with what was delivered. */
interface Alignment {
  /** What the new output must reproduce before its new text begins. */
  expected: string;
  matched: number;
  alive: boolean;
}

export class ResumeFilter {
  readonly #sentContent: string;
  readonly #sentReasoning: string;
  #reasoningMatched = 0;
  /** Still being decided: the continuation of the prefill, or a restart of the whole answer. */
  #alignments: Alignment[] | null;
  /** New content held back while undecided. */
  #held = '';

  constructor(plan: ResumePlan, sent: { content: string; reasoning: string }) {
    this.#sentContent = sent.content;
    this.#sentReasoning = sent.reasoning;
    const restart: Alignment = { expected: sent.content, matched: 0, alive: true };
    this.#alignments =
      sent.content === ''
        ? null
        : plan.mode === 'prefill'
          ? [{ expected: sent.content.slice(plan.prefill.length), matched: 0, alive: true }, restart]
          : [restart];
  }

  push(chunk: ChatCompletionChunk): FilterResult {
    const delta = chunk.choices[0]?.delta;
    if (!delta) return { kind: 'emit', chunk };
    if (delta.role !== undefined) delete delta.role;
    const reasoning = this.#filterReasoning(delta);
    if (reasoning) return reasoning;
    if (typeof delta.content === 'string' && delta.content !== '') {
      const content = this.#filterContent(delta, delta.content);
      if (content) return content;
    }
    if (this.#alignments !== null && delta.tool_calls !== undefined && delta.tool_calls.length > 0) {
      return { kind: 'diverged', why: 'the new answer calls a tool before repeating what was already sent' };
    }
    const finishing = (chunk.choices[0]?.finish_reason ?? null) !== null;
    if (finishing) {
      const short = this.#finish(delta);
      if (short) return short;
    }
    return { kind: 'emit', chunk: isEmpty(delta) && !finishing ? null : chunk };
  }

  #filterContent(delta: Delta, text: string): FilterResult | null {
    const alignments = this.#alignments;
    if (alignments === null) return null;
    const start = this.#held.length;
    this.#held += text;
    for (const a of alignments) {
      if (!a.alive || start >= a.expected.length) continue;
      const overlap = Math.min(text.length, a.expected.length - start);
      if (text.slice(0, overlap) !== a.expected.slice(start, start + overlap)) a.alive = false;
      else a.matched = start + overlap;
    }
    const restart = alignments[alignments.length - 1]!;
    const tail = alignments.length > 1 ? alignments[0]! : null;
    if (!restart.alive && !tail?.alive) return { kind: 'diverged', why: 'the new answer differs from what was already sent' };
    // The whole answer repeated: a restart. The tail repeated: a continuation, once a restart is ruled out.
    if (restart.alive && restart.matched === restart.expected.length) this.#decide(delta, restart);
    else if (tail !== null && tail.alive && tail.matched === tail.expected.length && !restart.alive) this.#decide(delta, tail);
    else delete delta.content;
    return null;
  }

  #decide(delta: Delta, alignment: Alignment): void {
    const rest = this.#held.slice(alignment.expected.length);
    this.#alignments = null;
    this.#held = '';
    if (rest === '') delete delta.content;
    else delta.content = rest;
  }

  /** The new attempt finishes: an answer that has not reproduced what was sent contradicts it. */
  #finish(delta: Delta): FilterResult | null {
    const alignments = this.#alignments;
    if (alignments !== null) {
      const tail = alignments.length > 1 ? alignments[0]! : null;
      if (tail === null || !tail.alive || tail.matched < tail.expected.length) {
        return { kind: 'diverged', why: 'the new answer ends before repeating what was already sent' };
      }
      this.#decide(delta, tail);
    }
    if (this.#sentContent.length === 0 && this.#reasoningMatched < this.#sentReasoning.length) {
      return { kind: 'diverged', why: 'the new reasoning is shorter than what was already sent' };
    }
    return null;
  }

  /** Reasoning is compared only when the client got reasoning alone; after content, new reasoning is dropped. */
  #filterReasoning(delta: Delta): FilterResult | null {
    const text = delta.reasoning_content;
    if (typeof text !== 'string' || text === '') return null;
    if (this.#sentContent.length > 0) {
      delete delta.reasoning_content;
      return null;
    }
    const sent = this.#sentReasoning;
    const matched = this.#reasoningMatched;
    if (matched >= sent.length) return null;
    const overlap = Math.min(text.length, sent.length - matched);
    if (text.slice(0, overlap) !== sent.slice(matched, matched + overlap)) {
      return { kind: 'diverged', why: 'the new reasoning differs from what was already sent' };
    }
    this.#reasoningMatched = matched + overlap;
    const rest = text.slice(overlap);
    if (rest === '') delete delta.reasoning_content;
    else delta.reasoning_content = rest;
    return null;
  }
}

function isSpace(code: number): boolean {
  return code === 32 || code === 10 || code === 9 || code === 13;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

function isEmpty(delta: Delta): boolean {
  for (const key in delta) {
    const value = delta[key];
    if (value !== undefined && value !== null && value !== '') return false;
  }
  return true;
}
