/**
 * What the `ask` view shows, as a pure reducer over engine events (STYLE
 * lesson 8): the Ink components only render this state, and the tests drive
 * it with plain event sequences.
 *
 * Time comes in through `tick` actions (the runner's clock), so the reducer
 * stays pure: an attempt's start is the last tick seen before its event, and
 * the view derives the spinner frame and elapsed times from `now`.
 *
 * Besides the current picture, the state keeps a `transcript`: what can no
 * longer change, in the order it happened (an attempt that failed or
 * committed, a finished line of the answer). It is only ever appended to, so
 * the view can hand it to Ink's <Static> even when attempts overlap (hedging)
 * or a broken stream resumes on another endpoint.
 */
import type { EngineEvent, FailureClass, FinishReason, Usage } from '../core/types.js';

/** `abandoned`: stopped without failing (a hedged attempt that lost the race). */
export type AttemptStatus = 'running' | 'ok' | 'failed' | 'abandoned' | 'cancelled';

export interface AttemptView {
  /** 1-based attempt number. */
  n: number;
  endpoint: string;
  model: string;
  /** Tried late because it was cooling down. */
  cooling: boolean;
  status: AttemptStatus;
  /** Clock value when the attempt started (see `tick`). */
  startedAt: number;
  /** Set when the engine committed to this attempt: its time to first token. */
  ttftMs: number | null;
  /** Final duration, once the attempt is over. */
  ms: number | null;
  failureClass: FailureClass | null;
  httpStatus: number | null;
  /** The failure's message, or why the attempt was abandoned. */
  message: string | null;
  /** It failed after commit: part of the answer was already shown. */
  afterCommit: boolean;
  /** It continues an answer that broke on an earlier attempt. */
  resumed: 'prefill' | 'restart' | null;
}

export type TextKind = 'reasoning' | 'content';

/** One logical line of the answer (reasoning and content never share a line). */
export interface TextLine {
  kind: TextKind;
  text: string;
}

/** Something that can no longer change, in the order it happened. */
export type TranscriptItem = { kind: 'attempt'; attempt: AttemptView } | { kind: 'line'; line: TextLine };

export type AskOutcome = 'running' | 'done' | 'failed' | 'interrupted' | 'cancelled';

export interface AskState {
  group: string;
  /** Clock value when the request started. */
  startedAt: number;
  /** Latest clock value. */
  now: number;
  attempts: AttemptView[];
  /** The endpoint the engine committed to. */
  endpoint: string | null;
  model: string | null;
  /** Settled attempts and finished answer lines, in order; only ever appended to. */
  transcript: TranscriptItem[];
  /** The line of the answer being written. */
  partial: TextLine | null;
  /** A `resume` that arrived before its attempt started. */
  pendingResume: { n: number; mode: 'prefill' | 'restart' } | null;
  usage: Usage | null;
  /** Time to first token of the whole request. */
  ttftMs: number | null;
  /** Duration of the whole request, once it ended. */
  totalMs: number | null;
  finishReason: FinishReason | null;
  outcome: AskOutcome;
  /** Why the request did not end well (the engine's message). */
  error: string | null;
}

/** The runner's clock moved on (spinner, elapsed times). */
export interface TickAction {
  type: 'tick';
  now: number;
}

export type AskAction = EngineEvent | TickAction;

export function initialAskState(group: string, now: number): AskState {
  return {
    group,
    startedAt: now,
    now,
    attempts: [],
    endpoint: null,
    model: null,
    transcript: [],
    partial: null,
    pendingResume: null,
    usage: null,
    ttftMs: null,
    totalMs: null,
    finishReason: null,
    outcome: 'running',
    error: null,
  };
}

export function askReducer(state: AskState, action: AskAction): AskState {
  switch (action.type) {
    case 'tick':
      return { ...state, now: action.now };
    case 'attempt_start': {
      const resumed = state.pendingResume?.n === action.n ? state.pendingResume.mode : null;
      return {
        ...state,
        pendingResume: resumed !== null ? null : state.pendingResume,
        attempts: [
          ...state.attempts,
          {
            n: action.n,
            endpoint: action.endpoint,
            model: action.model,
            cooling: action.cooling,
            status: 'running',
            startedAt: state.now,
            ttftMs: null,
            ms: null,
            failureClass: null,
            httpStatus: null,
            message: null,
            afterCommit: false,
            resumed,
          },
        ],
      };
    }
    case 'resume':
      return state.attempts.some((a) => a.n === action.n)
        ? updateAttempt(state, action.n, { resumed: action.mode })
        : { ...state, pendingResume: { n: action.n, mode: action.mode } };
    case 'attempt_failed': {
      // Text cut off by the failure stays above the line that says so.
      const base = action.afterCommit ? flushPartial(state) : state;
      return settleAttempt(
        updateAttempt(base, action.n, {
          status: 'failed',
          ms: action.ms,
          failureClass: action.failure.class,
          httpStatus: action.failure.status ?? null,
          message: action.failure.message,
          afterCommit: action.afterCommit,
        }),
        action.n,
      );
    }
    case 'attempt_abandoned':
      return settleAttempt(
        updateAttempt(state, action.n, { status: 'abandoned', ms: action.ms, message: action.reason }),
        action.n,
      );
    case 'commit':
      return {
        ...settleAttempt(updateAttempt(state, action.n, { ttftMs: action.ttftMs }), action.n),
        endpoint: action.endpoint,
        model: action.model,
      };
    case 'chunks': {
      let next = state;
      for (const chunk of action.chunks) {
        const delta = chunk.choices[0]?.delta;
        if (typeof delta?.reasoning_content === 'string') next = appendText(next, 'reasoning', delta.reasoning_content);
        if (typeof delta?.content === 'string') next = appendText(next, 'content', delta.content);
        if (chunk.usage) next = { ...next, usage: chunk.usage };
      }
      return next;
    }
    case 'completion': {
      const message = action.completion.choices[0]?.message;
      let next = state;
      if (typeof message?.reasoning_content === 'string')
        next = appendText(next, 'reasoning', message.reasoning_content);
      if (typeof message?.content === 'string') next = appendText(next, 'content', message.content);
      return { ...next, usage: action.completion.usage ?? next.usage };
    }
    case 'done': {
      const { summary } = action;
      const n = summary.attempts.length;
      const record = summary.attempts[n - 1];
      return {
        ...updateAttempt(state, n, { status: 'ok', ms: record?.ms ?? summary.ms }),
        endpoint: summary.endpoint ?? state.endpoint,
        usage: summary.usage ?? state.usage,
        ttftMs: summary.ttftMs,
        totalMs: summary.ms,
        finishReason: action.finishReason,
        outcome: 'done',
      };
    }
    case 'interrupted':
      return { ...state, outcome: 'interrupted', totalMs: action.summary.ms, error: action.error.error.message };
    case 'failed':
      return { ...state, outcome: 'failed', totalMs: action.summary.ms, error: action.error.error.message };
    case 'cancelled': {
      let next = flushPartial(state);
      for (const a of state.attempts) {
        if (a.status !== 'running') continue;
        next = updateAttempt(next, a.n, { status: 'cancelled', ms: Math.round(state.now - a.startedAt) });
        next = settleAttempt(next, a.n);
      }
      return { ...next, outcome: 'cancelled', totalMs: action.summary.ms };
    }
  }
}

/** Patch the latest attempt numbered `n`. */
function updateAttempt(state: AskState, n: number, patch: Partial<AttemptView>): AskState {
  const i = state.attempts.findLastIndex((a) => a.n === n);
  if (i < 0) return state;
  const attempts = state.attempts.slice();
  attempts[i] = { ...attempts[i]!, ...patch };
  return { ...state, attempts };
}

/** Copy the attempt, as it is now, to the transcript. */
function settleAttempt(state: AskState, n: number): AskState {
  const attempt = state.attempts.findLast((a) => a.n === n);
  return attempt ? { ...state, transcript: [...state.transcript, { kind: 'attempt', attempt }] } : state;
}

function flushPartial(state: AskState): AskState {
  if (state.partial === null || state.partial.text === '') return { ...state, partial: null };
  return { ...state, transcript: [...state.transcript, { kind: 'line', line: state.partial }], partial: null };
}

/**
 * Appends streamed text, moving every finished line to the transcript. A switch
 * between reasoning and content also ends the line, so the two never mix.
 */
function appendText(state: AskState, kind: TextKind, text: string): AskState {
  if (text === '') return state;
  let partial = state.partial;
  const finished: TextLine[] = [];
  if (partial !== null && partial.kind !== kind) {
    if (partial.text !== '') finished.push(partial);
    partial = null;
  }
  const pieces = text.split('\n');
  const last = pieces.pop() ?? '';
  let current = partial?.text ?? '';
  for (const piece of pieces) {
    finished.push({ kind, text: current + piece });
    current = '';
  }
  current += last;
  return {
    ...state,
    transcript:
      finished.length > 0
        ? [...state.transcript, ...finished.map((line) => ({ kind: 'line' as const, line }))]
        : state.transcript,
    partial: current === '' && finished.length > 0 ? null : { kind, text: current },
  };
}

/** The finished lines of the answer, in order. */
export function finishedLines(state: AskState): TextLine[] {
  return state.transcript.flatMap((item) => (item.kind === 'line' ? [item.line] : []));
}

/** The answer so far, content only, one entry per line. */
export function answerText(state: AskState): string {
  const lines = finishedLines(state);
  if (state.partial !== null) lines.push(state.partial);
  return lines
    .filter((l) => l.kind === 'content')
    .map((l) => l.text)
    .join('\n');
}
