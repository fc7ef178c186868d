/**
 * What a front door is to the server: a translator between one client
 * protocol and the engine's chat request and events. A front door never
 * decides failover and never touches a socket; the server writes what it
 * returns.
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  DoneEvent,
  FailedEvent,
  Group,
  InterruptedEvent,
} from '../core/types.js';

/** A JSON answer: status, body and extra headers. */
export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** One streaming answer's wire events, as text ready to write. */
export interface StreamWriter {
  /** The protocol's opening events, written right after the 200 head. */
  open(model: string): string;
  /** Sent while waiting for the first token after an early start. */
  keepAlive(): string;
  chunks(chunks: ChatCompletionChunk[]): string;
  done(event: DoneEvent): string;
  /** A committed stream broke: the protocol's in-band failure, never a completed answer. */
  interrupted(event: InterruptedEvent): string;
  /** Every endpoint failed after an early start: the protocol's in-band error. */
  failed(event: FailedEvent): string;
}

/** One accepted request. */
export interface Exchange {
  chat: ChatRequest;
  group: Group;
  stream: boolean;
  /** Extra response headers (e.g. a history repair mark). */
  headers: Record<string, string>;
  streamWriter(): StreamWriter;
  /** The non-streaming answer's body. */
  completion(completion: ChatCompletion): unknown;
  /** Every endpoint failed before anything was sent. */
  failure(event: FailedEvent): Reply;
}

/** Maps a client's model name onto a group, or undefined. */
export type GroupResolver = (model: string) => Group | undefined;

export interface FrontDoor {
  /** Names the front door in logs (`api` on request lines). */
  api: string;
  /** `early_start_s` when the group does not set it. */
  defaultEarlyStartS: number;
  accept(body: unknown, resolve: GroupResolver, groupNames: string[]): Exchange | Reply;
  /** The protocol's error body for a problem found before the engine runs. */
  error(status: number, message: string): Reply;
}

export function isReply(value: Exchange | Reply): value is Reply {
  return 'status' in value;
}
