/**
 * Tokens and cost of one answered request, and their sums. The engine reports
 * the upstream's `usage` as it came; which fields mean what, and what a
 * request cost, is decided here so the log line, `/status`, `/metrics` and
 * `logs --stats` all agree.
 */
import type { EndpointPrice, Usage } from '../core/types.js';

/** What one request used. `cost` is USD, null when neither the upstream nor a price tells it. */
export interface UsageFigures {
  prompt_tokens: number;
  completion_tokens: number;
  /** Prompt tokens read from the provider's cache (already inside `prompt_tokens`). */
  cached_tokens: number;
  /** Completion tokens spent on reasoning (already inside `completion_tokens`). */
  reasoning_tokens: number;
  cost: number | null;
}

/** Sums over many requests. `cost` adds up the requests whose cost is known; `unpriced` counts the others. */
export interface UsageTotals {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  cost: number;
  unpriced: number;
}

/** Looks up the price of the endpoint that answered (undefined: none configured). */
export type PriceLookup = (group: string, endpoint: string) => EndpointPrice | undefined;

const count = (value: unknown): number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;

function field(obj: unknown, key: string): unknown {
  return typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>)[key] : undefined;
}

/**
 * The figures of one `usage` object. Cached tokens come from OpenAI's
 * `prompt_tokens_details.cached_tokens` (or DeepSeek's `prompt_cache_hit_tokens`),
 * reasoning tokens from `completion_tokens_details.reasoning_tokens`. The cost is
 * the upstream's own `usage.cost` when it sends one (OpenRouter), else the
 * endpoint's price per million tokens.
 */
export function usageFigures(usage: Usage | null | undefined, price?: EndpointPrice): UsageFigures | null {
  if (usage === null || usage === undefined || typeof usage !== 'object') return null;
  const prompt = count(usage.prompt_tokens);
  const completion = count(usage.completion_tokens);
  const cached = count(field(usage.prompt_tokens_details, 'cached_tokens')) || count(usage['prompt_cache_hit_tokens']);
  const reasoning =
    count(field(usage.completion_tokens_details, 'reasoning_tokens')) || count(usage['reasoning_tokens']);
  const reported = usage['cost'];
  let cost: number | null = null;
  if (typeof reported === 'number' && Number.isFinite(reported) && reported >= 0) cost = reported;
  else if (price !== undefined) cost = (prompt * price.input + completion * price.output) / 1_000_000;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    cached_tokens: cached,
    reasoning_tokens: reasoning,
    cost,
  };
}

export function emptyTotals(): UsageTotals {
  return {
    requests: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    cached_tokens: 0,
    reasoning_tokens: 0,
    cost: 0,
    unpriced: 0,
  };
}

/** Adds one request's figures into `totals` (in place) and returns it. */
export function addUsage(totals: UsageTotals, figures: UsageFigures): UsageTotals {
  totals.requests += 1;
  totals.prompt_tokens += figures.prompt_tokens;
  totals.completion_tokens += figures.completion_tokens;
  totals.cached_tokens += figures.cached_tokens;
  totals.reasoning_tokens += figures.reasoning_tokens;
  if (figures.cost === null) totals.unpriced += 1;
  else totals.cost += figures.cost;
  return totals;
}

/** USD for people: small sums keep their significant digits. */
export function formatCost(usd: number | null): string {
  if (usd === null) return '—';
  if (usd === 0) return '$0';
  if (usd < 0.0001) return `$${usd.toPrecision(2)}`;
  if (usd < 1) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(usd < 100 ? 2 : 0)}`;
}

/** `12.3k`-style token counts for tables. */
export function formatTokens(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(n < 10_000_000 ? 2 : 1)}M`;
}

/**
 * Prices by group and endpoint from the live groups, for observers that only
 * see names. `groupOf` is a lookup by name (a Map's `get`): this runs for
 * every answered request.
 */
export function priceLookup(
  groupOf: (name: string) => { endpoints: ReadonlyArray<{ name: string; price?: EndpointPrice }> } | undefined,
): PriceLookup {
  return (group, endpoint) => groupOf(group)?.endpoints.find((e) => e.name === endpoint)?.price;
}

/** Prices of one group's endpoints (a command that serves a single group). */
export function groupPrices(group: { name: string; endpoints: ReadonlyArray<{ name: string; price?: EndpointPrice }> }): PriceLookup {
  return priceLookup((name) => (name === group.name ? group : undefined));
}
