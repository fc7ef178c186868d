import type { ProviderAdapter } from './index.js';

/**
 * Chutes authenticates with `Authorization: Bearer` only (never X-API-Key).
 * Its FastAPI `{"detail": …}` errors and bare error lines mid-stream are
 * recognised by the shared classifier and SSE decoder. It serves models with
 * vLLM and SGLang but does not document honouring `continue_final_message`,
 * so a prefill is not assumed (`test-endpoints --resume` tells per endpoint).
 */
export const chutes: ProviderAdapter = {
  headers: () => ({}),
  prefill: false,
};
