import type { ProviderAdapter } from './index.js';

/** Any OpenAI-compatible server: nothing beyond the standard request. */
export const openai: ProviderAdapter = {
  headers: () => ({}),
};
