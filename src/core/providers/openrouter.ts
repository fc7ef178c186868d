import type { ProviderAdapter } from './index.js';

/**
 * OpenRouter attributes traffic by `HTTP-Referer` and title headers
 * (openrouter.ai/docs/app-attribution). Its in-band errors (200 bodies with
 * `error`, chunks with `finish_reason: "error"`) are handled for every type.
 * It documents assistant prefill ("Assistant Prefill" in its API reference:
 * a final assistant message is completed, not answered).
 */
export const openrouter: ProviderAdapter = {
  headers: () => ({
    'HTTP-Referer': 'https://github.com/failproxy/failproxy',
    'X-Title': 'FailProxy',
    'X-OpenRouter-Title': 'FailProxy',
  }),
  prefill: true,
};
