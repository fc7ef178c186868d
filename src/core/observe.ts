/**
 * Consumers that watch requests go by without steering them: the logger,
 * `/status`, `/metrics`. They see every engine event with its request context.
 */
import type { ChatMessage, ChatRequest, EngineEvent } from './types.js';

export interface RequestContext {
  requestId: string;
  group: string;
  stream: boolean;
  /** Which face served the request. */
  source: 'serve' | 'ask';
  /** The client protocol (front door) it came in by, e.g. `messages`; absent = chat. */
  api?: string;
  /** The body was malformed JSON that was repaired. */
  repaired: boolean;
  /** The client's messages (only ever logged at debug level). */
  messages: ChatMessage[];
  /** The whole request as the engine got it (request capture); the same object, never a copy. */
  body?: ChatRequest;
}

export interface EngineObserver {
  onEvent(context: RequestContext, event: EngineEvent): void;
}

/** The HTTP status a request ended with, as the client saw it. */
export function finalStatus(event: EngineEvent): number | null {
  switch (event.type) {
    case 'done':
    case 'interrupted':
      return 200;
    case 'failed':
      return event.status;
    case 'cancelled':
      // nginx's "client closed request".
      return 499;
    default:
      return null;
  }
}
