/** Hand-built engine events for the reducer and view tests. */
import type {
  AttemptRecord,
  ChatCompletionChunk,
  Delta,
  EngineEvent,
  FailureClass,
  FinishReason,
  RequestSummary,
  Usage,
} from '../../src/core/types.js';
import { askReducer, initialAskState, type AskAction, type AskState } from '../../src/ui/state.js';

export const USAGE: Usage = { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 };

export function summary(attempts: AttemptRecord[], extra: Partial<RequestSummary> = {}): RequestSummary {
  return {
    requestId: 'req-1',
    group: 'g',
    stream: true,
    endpoint: null,
    attempts,
    ms: 1234,
    ttftMs: null,
    usage: null,
    ...extra,
  };
}

export const start = (n: number, endpoint: string): EngineEvent => ({
  type: 'attempt_start',
  n,
  endpoint,
  model: `${endpoint}-model`,
  cooling: false,
});

export const fail = (
  n: number,
  endpoint: string,
  klass: FailureClass,
  status: number | undefined,
  message: string,
  ms = 312,
  afterCommit = false,
): EngineEvent => ({
  type: 'attempt_failed',
  n,
  endpoint,
  failure: status === undefined ? { class: klass, message } : { class: klass, status, message },
  ms,
  afterCommit,
});

export const commit = (n: number, endpoint: string, ttftMs = 150): EngineEvent => ({
  type: 'commit',
  n,
  endpoint,
  model: `${endpoint}-model`,
  ttftMs,
});

export function chunk(delta: Delta, finish: FinishReason | null = null, usage?: Usage): EngineEvent {
  const c: ChatCompletionChunk = {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }],
  };
  if (usage) c.usage = usage;
  return { type: 'chunks', chunks: [c] };
}

export const record = (
  endpoint: string,
  klass: FailureClass | null = null,
  status: number | null = null,
  message: string | null = null,
  ms = 100,
): AttemptRecord => ({
  endpoint,
  class: klass,
  status,
  message,
  ms,
});

export const tick = (now: number): AskAction => ({ type: 'tick', now });

/**
 * Folds the actions, checking at every step that the transcript was only
 * appended to (what Ink's <Static> relies on).
 */
export function reduce(actions: AskAction[], state: AskState = initialAskState('g', 0)): AskState {
  return actions.reduce((previous, action) => {
    const next = askReducer(previous, action);
    previous.transcript.forEach((item, i) => {
      if (next.transcript[i] !== item) throw new Error(`transcript item ${i} changed after ${action.type}`);
    });
    return next;
  }, state);
}
