/**
 * Cancelling a request from inside the engine (client gone, deadline) and
 * waiting that gives way to it.
 */

/**
 * A request's own abort flag with listeners: what an AbortController does,
 * without an EventTarget per request on the hot path.
 */
export class Cancellation {
  aborted = false;
  readonly #listeners = new Set<() => void>();

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    for (const listener of [...this.#listeners]) listener();
    this.#listeners.clear();
  }

  /** Call `listener` on abort (at once if already aborted); returns the way to unsubscribe. */
  onAbort(listener: () => void): () => void {
    if (this.aborted) {
      listener();
      return () => {};
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** Resolves true after `ms`, false as soon as `cancellation` aborts. */
export function sleep(ms: number, cancellation: Cancellation): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      off();
      resolve(true);
    }, ms);
    const off = cancellation.onAbort(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
