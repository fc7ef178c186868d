/**
 * `early_start_s` on the chat route (off unless the group sets it): the same
 * driver as the agent front doors, writing Chat Completions SSE. The opening
 * event and the keep-alives are SSE comments, which every OpenAI client skips;
 * an all-failed outcome after the early start is the in-band error event the
 * OpenAI SDKs raise (SPEC §3.4), since the 200 is already sent.
 */
import type { ServerResponse } from 'node:http';
import type { ChatCompletionChunk, ChatRequest, FailedEvent, Group, InterruptedEvent } from '../core/types.js';
import type { Exchange, StreamWriter } from '../protocols/types.js';
import { ChunkEncoder } from './chunk-encoder.js';
import { runExchange, type FrontDoorDeps } from './front-door.js';
import type { Headers } from './http.js';

class ChatStreamWriter implements StreamWriter {
  readonly #encoder = new ChunkEncoder();

  open(): string {
    return ': failproxy\n\n';
  }

  keepAlive(): string {
    return ': keep-alive\n\n';
  }

  chunks(chunks: ChatCompletionChunk[]): string {
    let text = '';
    for (const chunk of chunks) text += this.#encoder.encode(chunk);
    return text;
  }

  done(): string {
    return 'data: [DONE]\n\n';
  }

  interrupted(event: InterruptedEvent): string {
    return `data: ${JSON.stringify(event.error)}\n\n`;
  }

  failed(event: FailedEvent): string {
    return `data: ${JSON.stringify(event.error)}\n\n`;
  }
}

/** Serves a streaming chat request whose group sets `early_start_s`. */
export function serveChatWithEarlyStart(
  deps: FrontDoorDeps,
  chat: ChatRequest,
  group: Group,
  earlyStartS: number,
  res: ServerResponse,
  headers: Headers,
  requestId: string,
  repaired: boolean,
): Promise<void> {
  const exchange: Exchange = {
    chat,
    group,
    stream: true,
    headers: {},
    streamWriter: () => new ChatStreamWriter(),
    completion: (completion) => completion,
    failure: (event) => ({ status: event.status, body: event.error, headers: event.headers }),
  };
  return runExchange(deps, exchange, { earlyStartS, repaired }, res, headers, requestId);
}
