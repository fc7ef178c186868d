import type { ProviderAdapter } from './index.js';

/**
 * Chutes authenticates with `Authorization: Bearer` only (never X-API-Key).
 * Its FastAPI `{"detail": …}` errors and bare error lines mid-stream are
 * recognised by the shared classifier and SSE decoder.
 */
export const chutes: ProviderAdapter = {
  headers: () => ({}),
};
