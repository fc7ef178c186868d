/**
 * Endpoint types (SPEC §2 `type`): what differs per provider when calling it.
 * Error and stream quirks are detected for every type (an OpenAI-typed
 * endpoint may well sit in front of vLLM or Chutes), so an adapter only adds
 * what a provider needs on the way out. Adding a type is one small file.
 */
import type { Endpoint, EndpointType } from '../types.js';
import { chutes } from './chutes.js';
import { openai } from './openai.js';
import { openrouter } from './openrouter.js';

export interface ProviderAdapter {
  /** Extra request headers, before the endpoint's own `headers` (which win). */
  headers(endpoint: Endpoint): Record<string, string>;
  /**
   * The provider is documented to continue a prefilled final assistant
   * message (the default of the endpoint's `prefill`). Where that is not
   * documented, assume it is not: an ignored prefill is a new answer.
   */
  prefill: boolean;
}

const ADAPTERS: Record<EndpointType, ProviderAdapter> = { openai, openrouter, chutes };

export function adapterFor(type: EndpointType): ProviderAdapter {
  return ADAPTERS[type];
}
