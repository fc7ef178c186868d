import type { ProviderAdapter } from './index.js';

/**
 * Any OpenAI-compatible server: nothing beyond the standard request. OpenAI's
 * own API answers a trailing assistant message with a new answer instead of
 * continuing it, and so do many compatible servers: no prefill by default.
 */
export const openai: ProviderAdapter = {
  headers: () => ({}),
  prefill: false,
};
