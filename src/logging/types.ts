/**
 * The JSONL log records (SPEC §6). One object per line in `<log-dir>/YYYY-MM-DD.jsonl`.
 * Writers add `ts` and `level`; readers must tolerate unknown events and fields.
 */
import type { FailureClass, Usage } from '../core/types.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

interface BaseRecord {
  /** ISO 8601 timestamp with milliseconds. */
  ts: string;
  level: LogLevel;
}

/** One finished request (served by `serve` or `ask`). */
export interface RequestRecord extends BaseRecord {
  event: 'request';
  id: string;
  group: string;
  stream: boolean;
  /** The endpoint that answered, or null when none did. */
  endpoint: string | null;
  /** Number of attempts made. */
  attempts: number;
  /** HTTP status sent to the client (200 also for an interrupted stream). */
  status: number;
  outcome: 'ok' | 'failed' | 'interrupted' | 'cancelled';
  ms: number;
  ttft_ms: number | null;
  usage: Usage | null;
  /** USD: the upstream's `usage.cost`, else from the endpoint's `price`; absent when unknown. */
  cost?: number;
  /** Which face produced it. */
  source: 'serve' | 'ask';
  /** The front door a request came in by (`messages`, `responses`); absent = chat. */
  api?: string;
  repaired?: boolean;
  /** Debug level only: the client's messages and the answer text. */
  messages?: unknown;
  answer?: string;
}

/** One attempt against one endpoint. `ok: true` only for the attempt that answered. */
export interface AttemptRecordLine extends BaseRecord {
  event: 'attempt';
  id: string;
  group: string;
  endpoint: string;
  n: number;
  ok: boolean;
  class: FailureClass | null;
  status: number | null;
  message: string | null;
  ms: number;
  ttft_ms?: number | null;
  /** The attempt was stopped without failing (a hedge that lost, a cancelled request): not counted in stats. */
  abandoned?: boolean;
}

/** A committed stream broke and continued from another attempt (group option `resume`). */
export interface ResumeRecord extends BaseRecord {
  event: 'resume';
  id: string;
  group: string;
  endpoint: string;
  n: number;
  mode: 'prefill' | 'restart';
  /** Characters of the already-delivered answer the new attempt built on. */
  reused_chars: number;
}

/**
 * The request went to an endpoint twice: its kept-alive connection was closed
 * before any answer, so it was resent once on a new connection (SPEC §3.11).
 */
export interface ResendRecord extends BaseRecord {
  event: 'resend';
  id: string;
  group: string;
  endpoint: string;
  message: string;
}

export interface ConfigRecord extends BaseRecord {
  event: 'config';
  action: 'loaded' | 'reloaded' | 'error' | 'skipped';
  file?: string;
  group?: string;
  message: string;
}

export interface ServerRecord extends BaseRecord {
  event: 'server';
  /** `redis_*`: the shared health store (`serve --redis`) became unusable, or came back. `refused`: a web page's Origin or a Host was turned away. */
  action: 'start' | 'stop' | 'redis_unavailable' | 'redis_back' | 'refused';
  url?: string;
  message?: string;
}

export type LogRecord = RequestRecord | AttemptRecordLine | ResumeRecord | ResendRecord | ConfigRecord | ServerRecord;
