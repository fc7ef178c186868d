/**
 * Plain-text pieces of the `ask` display, shared by the Ink view and the piped
 * `-v` lines so both say the same thing. No React here: the piped path uses it.
 */
import { formatDuration } from '../logging/pretty.js';
import type { Usage } from '../core/types.js';
import type { AttemptView } from './state.js';

export { formatDuration };

export const OK_MARK = '✓';
export const FAIL_MARK = '✗';
export const ABANDONED_MARK = '○';

/** `rate_limit 429 (312 ms): Rate limit exceeded` — what went wrong with a failed attempt. */
export function describeAttemptFailure(attempt: AttemptView): string {
  const status = attempt.httpStatus !== null ? ` ${attempt.httpStatus}` : '';
  const ms = attempt.ms !== null ? ` (${formatDuration(attempt.ms)})` : '';
  const when = attempt.afterCommit ? ' mid-answer' : '';
  const message = attempt.message !== null && attempt.message !== '' ? `: ${oneLine(attempt.message)}` : '';
  return `${attempt.failureClass ?? 'failed'}${status}${ms}${when}${message}`;
}

/** `abandoned (1.2 s): another attempt answered first` */
export function describeAbandoned(attempt: AttemptView): string {
  const ms = attempt.ms !== null ? ` (${formatDuration(attempt.ms)})` : '';
  const reason = attempt.message !== null && attempt.message !== '' ? `: ${oneLine(attempt.message)}` : '';
  return `abandoned${ms}${reason}`;
}

/**
 * One finished attempt as one line, e.g.
 * `[1] openrouter-r1 ✗ rate_limit 429 (312 ms): Rate limit exceeded` or `[2] chutes-r1 ✓ 1.8 s`.
 */
export function formatAttemptLine(attempt: AttemptView): string {
  const head = `[${attempt.n}] ${attempt.endpoint}${attemptTags(attempt)}`;
  switch (attempt.status) {
    case 'failed':
      return `${head} ${FAIL_MARK} ${describeAttemptFailure(attempt)}`;
    case 'abandoned':
      return `${head} ${ABANDONED_MARK} ${describeAbandoned(attempt)}`;
    case 'cancelled':
      return `${head} ${FAIL_MARK} cancelled${attempt.ms !== null ? ` (${formatDuration(attempt.ms)})` : ''}`;
    case 'ok':
      return `${head} ${OK_MARK} ${formatDuration(attempt.ms)}${attempt.ttftMs !== null ? ` (first token ${formatDuration(attempt.ttftMs)})` : ''}`;
    case 'running':
      return attempt.ttftMs !== null ? `${head} ${OK_MARK} first token ${formatDuration(attempt.ttftMs)}` : head;
  }
}

/** ` (cooling)`, ` (resumes the answer: prefill)`: why this attempt is special, or nothing. */
export function attemptTags(attempt: AttemptView): string {
  const tags: string[] = [];
  if (attempt.cooling) tags.push('cooling');
  if (attempt.resumed !== null) tags.push(`resumes the answer: ${attempt.resumed}`);
  return tags.length > 0 ? ` (${tags.join(', ')})` : '';
}

/** `5 in · 7 out · 12 tokens` */
export function formatUsage(usage: Usage | null): string | null {
  if (usage === null) return null;
  return `${usage.prompt_tokens} in · ${usage.completion_tokens} out · ${usage.total_tokens} tokens`;
}

/** Upstream messages can span lines (HTML pages, stack traces); a status line cannot. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
