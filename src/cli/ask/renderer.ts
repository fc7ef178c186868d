/** What `ask` hands engine events to: the piped text output or the Ink view. */
import type { EngineEvent } from '../../core/types.js';

export interface Output {
  write(text: string, callback?: (err?: Error | null) => void): unknown;
}

export interface AskRenderer {
  onEvent(event: EngineEvent): void;
  /** After the last event (or an error): flush, unmount, leave the final output in place. */
  close(): Promise<void>;
}
