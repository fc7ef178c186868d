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
  /**
   * Usually one listener: an exact-size array, not a Set or a pushed-to array
   * (either keeps room for ~16 for as long as the stream stays open).
   */
  #listeners: Array<() => void> | null = null;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.#listeners ?? [];
    this.#listeners = null;
    for (const listener of listeners) listener();
  }

  /** Call `listener` on abort (at once if already aborted); returns the way to unsubscribe. */
  onAbort(listener: () => void): () => void {
    if (this.aborted) {
      listener();
      return () => {};
    }
    this.#listeners = this.#listeners === null ? [listener] : [...this.#listeners, listener];
    return () => {
      if (this.#listeners !== null) this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
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
