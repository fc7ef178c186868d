/**
 * A local token estimate for `count_tokens` and `message_start`. No tokenizer
 * matches every upstream, and an estimate that runs short makes an agent
 * compact its context too late, so it errs high: one token per three UTF-8
 * bytes of the request's text and JSON (real tokenizers average about four),
 * rounded up.
 */
export function estimateTokens(...parts: unknown[]): number {
  let bytes = 0;
  for (const part of parts) {
    if (part === undefined || part === null) continue;
    bytes += Buffer.byteLength(typeof part === 'string' ? part : JSON.stringify(part));
  }
  return Math.ceil(bytes / 3);
}
