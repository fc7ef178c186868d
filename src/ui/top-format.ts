/**
 * Plain-text pieces of `failproxy top`, shared by the Ink view and tests.
 * No React here.
 */
import type { FeedRequest } from '../server/feed.js';
import type { EndpointStatus } from '../server/status.js';
import { formatCost, formatTokens, type UsageTotals } from '../logging/usage.js';
import { FAIL_MARK, formatDuration, OK_MARK } from './format.js';

/** `a ✗ rate_limit 429 → b ✓ 1.8 s`, and how a request that got no answer ended. */
export function formatFeedChain(request: FeedRequest): string {
  const steps = request.attempts.map((a) => {
    if (a.ok) return `${a.endpoint} ${OK_MARK} ${formatDuration(a.ms)}`;
    if (a.class === null) return `${a.endpoint} abandoned`;
    return `${a.endpoint} ${FAIL_MARK} ${a.class}${a.status !== null ? ` ${a.status}` : ''}`;
  });
  let text = steps.join(' → ');
  if (request.outcome !== 'ok')
    text += ` ${FAIL_MARK} ${request.outcome === 'interrupted' ? 'stream interrupted' : request.outcome} (${request.status})`;
  return text;
}

/** Local `HH:MM:SS` of an ISO time. */
export function clockTime(iso: string): string {
  const d = new Date(iso);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** `45s`, `2m05s`, `3h07m`: how long a server has been up, or a cooldown has left. */
export function formatSpan(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `ok`, `cooling 4m12s: rate_limit`, `half-open`. */
export function formatEndpointState(endpoint: EndpointStatus, now: number): string {
  if (endpoint.state === 'ok') return 'ok';
  if (endpoint.state === 'half_open') return 'half-open';
  const left = endpoint.cooling_until !== null ? Math.max(0, Date.parse(endpoint.cooling_until) - now) : 0;
  return `cooling ${formatSpan(left / 1000)}${endpoint.reason !== null ? `: ${endpoint.reason}` : ''}`;
}

/** `97% of 35`, or `—` without traffic in the window. */
export function formatSuccess(endpoint: EndpointStatus): string {
  const failed = Object.values(endpoint.window.failures).reduce((a, b) => a + (b ?? 0), 0);
  const total = endpoint.window.successes + failed;
  return total === 0 ? '—' : `${Math.round((endpoint.window.successes / total) * 100)}% of ${total}`;
}

/** `p50/p95` latency. */
export function formatLatency(p50: number | null, p95: number | null): string {
  return p50 === null ? '—' : `${formatDuration(p50)}/${formatDuration(p95)}`;
}

/** `3.6k/1.0k $0.0021` */
export function formatSpend(usage: UsageTotals): string {
  if (usage.requests === 0) return '—';
  const cost = usage.unpriced === usage.requests ? '' : ` ${formatCost(usage.cost)}`;
  return `${formatTokens(usage.prompt_tokens)}/${formatTokens(usage.completion_tokens)}${cost}`;
}
