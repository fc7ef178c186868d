/**
 * Request capture (`serve --capture DIR`): the body of each request that got
 * no answer (or of every request, when asked), with what happened to it, one
 * `<request id>.json` per request, so `failproxy replay ID` can send it again.
 * Keys never reach the file; with `redactContent` message text does not either.
 * Each file is capped in size and the directory in count (oldest go first).
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EngineObserver, RequestContext } from '../core/observe.js';
import { redactSecrets } from '../core/redact.js';
import type { ChatRequest, EngineEvent } from '../core/types.js';
import { RequestFeed, type FeedRequest } from './feed.js';

export interface CaptureOptions {
  dir: string;
  /** Capture answered requests too, not only failed and interrupted ones. */
  all?: boolean;
  /** Replace message text with a placeholder that keeps only its length. */
  redactContent?: boolean;
  /** Largest capture file; a bigger request keeps its outcome but not its body. Default 256 KiB. */
  maxBytes?: number;
  /** Files kept; the oldest are deleted past it. Default 500. */
  maxFiles?: number;
  onError?: (err: Error) => void;
}

/** What a capture file holds. */
export interface CaptureRecord {
  version: 1;
  /** What happened to the request: its outcome and failover chain. */
  original: FeedRequest;
  /** The client's request, redacted; null when it was larger than the cap. */
  request: ChatRequest | null;
  redacted_content: boolean;
  /** Set when the body was left out for its size. */
  too_large_bytes?: number;
}

const ID = /^[A-Za-z0-9_-]{1,128}$/;

/** The capture file of a request id, or null for an id that cannot name one (no path tricks). */
export function captureFile(dir: string, id: string): string | null {
  return ID.test(id) ? path.join(dir, `${id}.json`) : null;
}

/** Reads a capture; null when there is none. */
export async function readCapture(dir: string, id: string): Promise<CaptureRecord | null> {
  const file = captureFile(dir, id);
  if (file === null) return null;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as CaptureRecord;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export class CaptureObserver implements EngineObserver {
  readonly #options: Required<Omit<CaptureOptions, 'onError'>> & Pick<CaptureOptions, 'onError'>;
  readonly #feed = new RequestFeed();
  #finished: FeedRequest | null = null;
  /** Capture files, oldest first. */
  readonly #files: string[];
  #writing: Promise<void> = Promise.resolve();

  constructor(options: CaptureOptions) {
    this.#options = { all: false, redactContent: false, maxBytes: 256 * 1024, maxFiles: 500, ...options };
    mkdirSync(options.dir, { recursive: true });
    this.#files = readdirSync(options.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => ({ f, t: statSync(path.join(options.dir, f)).mtimeMs }))
      .sort((a, b) => a.t - b.t)
      .map(({ f }) => path.join(options.dir, f));
    this.#feed.subscribe((request) => (this.#finished = request));
  }

  onEvent(context: RequestContext, event: EngineEvent): void {
    this.#feed.onEvent(context, event);
    const request = this.#finished;
    if (request === null) return;
    this.#finished = null;
    const wanted = this.#options.all
      ? request.outcome !== 'cancelled'
      : request.outcome === 'failed' || request.outcome === 'interrupted';
    if (!wanted || context.body === undefined) return;
    const text = this.#serialize(request, context.body);
    this.#writing = this.#writing.then(() => this.#write(request.id, text));
  }

  /** Resolves once every capture so far is on disk. */
  flush(): Promise<void> {
    return this.#writing;
  }

  #serialize(original: FeedRequest, body: ChatRequest): string {
    const request = this.#options.redactContent ? redactContent(body) : body;
    const record: CaptureRecord = { version: 1, original, request, redacted_content: this.#options.redactContent };
    // Keys are masked in the text as a whole: a client may paste one anywhere.
    let text = redactSecrets(JSON.stringify(record, null, 2));
    const bytes = Buffer.byteLength(text);
    if (bytes > this.#options.maxBytes) {
      text = redactSecrets(JSON.stringify({ ...record, request: null, too_large_bytes: bytes }, null, 2));
    }
    return text;
  }

  async #write(id: string, text: string): Promise<void> {
    const file = captureFile(this.#options.dir, id);
    if (file === null) return;
    try {
      // Written aside and renamed: a reader never sees half a capture.
      await writeFile(`${file}.tmp`, text, { mode: 0o600 });
      await rename(`${file}.tmp`, file);
      this.#files.push(file);
      while (this.#files.length > this.#options.maxFiles) await unlink(this.#files.shift()!).catch(() => undefined);
    } catch (err) {
      this.#options.onError?.(err as Error);
    }
  }
}

/** Message text becomes `[redacted: N chars]`; roles, names, tools and parameters stay. */
function redactContent(body: ChatRequest): ChatRequest {
  const hide = (text: string): string => `[redacted: ${text.length} chars]`;
  const messages = body.messages.map((m) => {
    const out = { ...m };
    if (typeof m.content === 'string') out.content = hide(m.content);
    else if (Array.isArray(m.content)) {
      out.content = m.content.map((part: unknown) => {
        if (typeof part !== 'object' || part === null) return part;
        const p = part as Record<string, unknown>;
        if (typeof p.text === 'string') return { ...p, text: hide(p.text) };
        if (p.type === 'image_url') return { type: 'image_url', image_url: { url: '[redacted image]' } };
        return p;
      });
    }
    if (typeof m.reasoning_content === 'string') out.reasoning_content = hide(m.reasoning_content);
    if (Array.isArray(m.tool_calls)) {
      out.tool_calls = m.tool_calls.map((call: unknown) => {
        const c = call as { function?: { arguments?: unknown } };
        if (typeof c?.function?.arguments !== 'string') return call;
        return { ...c, function: { ...c.function, arguments: hide(c.function.arguments) } };
      });
    }
    return out;
  });
  const redacted: ChatRequest = { ...body, messages };
  if (typeof body.prompt === 'string') redacted.prompt = hide(body.prompt);
  return redacted;
}
