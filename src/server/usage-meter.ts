/**
 * Tokens and cost per group and endpoint since the server started, for
 * `/status` and the dashboard. Only answered (and interrupted) requests count:
 * the usage the engine reports is the answering endpoint's.
 */
import type { EngineObserver, RequestContext } from '../core/observe.js';
import type { EngineEvent, RequestSummary } from '../core/types.js';
import {
  addUsage,
  emptyTotals,
  usageFigures,
  type PriceLookup,
  type UsageFigures,
  type UsageTotals,
} from '../logging/usage.js';

export class UsageMeter implements EngineObserver {
  readonly #totals = new Map<string, UsageTotals>();
  readonly #priceOf: PriceLookup;
  /**
   * The last summary priced: the observers of one event ask one after another.
   * Not a WeakMap keyed by every summary, whose ephemerons each scavenge walks.
   */
  #pricedSummary: RequestSummary | null = null;
  #pricedFigures: UsageFigures | null = null;

  constructor(priceOf: PriceLookup) {
    this.#priceOf = priceOf;
  }

  onEvent(context: RequestContext, event: EngineEvent): void {
    if (event.type !== 'done' && event.type !== 'interrupted') return;
    const figures = this.figuresOf(context.group, event.summary);
    if (figures === null || event.summary.endpoint === null) return;
    const key = `${context.group}\u0000${event.summary.endpoint}`;
    let totals = this.#totals.get(key);
    if (totals === undefined) {
      totals = emptyTotals();
      this.#totals.set(key, totals);
    }
    addUsage(totals, figures);
  }

  /**
   * One request's figures, priced by its answering endpoint. The metrics, the
   * feed and this meter all ask for the same summary: it is priced once.
   */
  figuresOf(group: string, summary: RequestSummary): UsageFigures | null {
    if (summary === this.#pricedSummary) return this.#pricedFigures;
    const price = summary.endpoint !== null ? this.#priceOf(group, summary.endpoint) : undefined;
    const figures = usageFigures(summary.usage, price);
    this.#pricedSummary = summary;
    this.#pricedFigures = figures;
    return figures;
  }

  /** Totals of one endpoint (zeros when it answered nothing yet). */
  endpoint(group: string, endpoint: string): UsageTotals {
    return { ...(this.#totals.get(`${group}\u0000${endpoint}`) ?? emptyTotals()) };
  }
}

/** Adds `b` into a copy of `a`. */
export function sumTotals(a: UsageTotals, b: UsageTotals): UsageTotals {
  return {
    requests: a.requests + b.requests,
    prompt_tokens: a.prompt_tokens + b.prompt_tokens,
    completion_tokens: a.completion_tokens + b.completion_tokens,
    cached_tokens: a.cached_tokens + b.cached_tokens,
    reasoning_tokens: a.reasoning_tokens + b.reasoning_tokens,
    cost: a.cost + b.cost,
    unpriced: a.unpriced + b.unpriced,
  };
}
