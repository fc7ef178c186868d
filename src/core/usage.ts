/**
 * Summing the usage of several attempts of one answer (a resumed stream is
 * paid for twice) without dropping what providers report beside the three
 * totals: `prompt_tokens_details`, `completion_tokens_details`, `cost`…
 */

/** `into` += `from`, key by key: numbers summed, objects (details) summed into copies, new keys copied. */
export function sumUsage(into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const key in from) {
    const a = into[key];
    const b = from[key];
    if (typeof b === 'number') {
      if (typeof a === 'number') into[key] = a + b;
      else if (a === undefined || a === null) into[key] = b;
    } else if (isRecord(b)) {
      if (isRecord(a)) {
        // The first attempt's details object is shared with what it reported: sum into a copy.
        const sum = { ...a };
        sumUsage(sum, b);
        into[key] = sum;
      } else if (a === undefined || a === null) {
        into[key] = { ...b };
      }
    } else if (a === undefined) {
      into[key] = b;
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
