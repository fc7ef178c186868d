/**
 * `GET /ui/events`: the live views' one connection (the dashboard, `failproxy
 * top`). Server-sent events, each `data:` a JSON message with a `type`:
 * `snapshot` on connect (status, series, recent requests), `request` as each
 * request ends, `status` every couple of seconds while anyone watches. The
 * server pushes; nobody polls.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError, type Headers } from './http.js';
import type { FeedRequest, RequestFeed, SeriesPoint } from './feed.js';
import type { StatusBody } from './status.js';

export type LiveMessage =
  | { type: 'snapshot'; status: StatusBody; series: SeriesPoint[]; recent: FeedRequest[] }
  | { type: 'status'; status: StatusBody; series: SeriesPoint[] }
  | { type: 'request'; request: FeedRequest };

export interface LiveEventsOptions {
  feed: RequestFeed;
  status: () => StatusBody;
  /** How often the status is pushed; default 2 s. */
  intervalMs?: number;
  /** Watchers at once; more get 503. Default 32. */
  maxClients?: number;
  /** A watcher that lets this much pile up unread is dropped (it reconnects to a fresh snapshot). Default 1 MiB. */
  maxBufferedBytes?: number;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

export class LiveEvents {
  readonly #clients = new Set<ServerResponse>();
  readonly #options: Required<Omit<LiveEventsOptions, 'feed' | 'status'>> & Pick<LiveEventsOptions, 'feed' | 'status'>;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(options: LiveEventsOptions) {
    this.#options = { intervalMs: 2000, maxClients: 32, maxBufferedBytes: 1024 * 1024, ...options };
  }

  /** The route handler (the server has already checked the API key). */
  handle = (req: IncomingMessage, res: ServerResponse, headers: Headers): void => {
    if (this.#clients.size >= this.#options.maxClients) {
      sendError(
        res,
        503,
        `Too many live viewers (${this.#options.maxClients}); close one and retry`,
        'server_error',
        'too_many_viewers',
        null,
        headers,
      );
      return;
    }
    res.writeHead(200, { ...headers, ...SSE_HEADERS });
    this.#clients.add(res);
    const forget = (): void => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) this.#idle();
    };
    res.on('close', forget);
    req.on('close', forget);
    const { feed, status } = this.#options;
    this.#send(res, frame({ type: 'snapshot', status: status(), series: feed.series(), recent: feed.recent() }));
    if (this.#clients.size === 1) this.#watch();
  };

  /** Viewers connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** End every stream (before the server shuts down, so no viewer holds it open). */
  close(): void {
    for (const res of this.#clients) res.end();
    this.#clients.clear();
    this.#idle();
  }

  #watch(): void {
    this.#unsubscribe = this.#options.feed.subscribe((request) => this.#broadcast(frame({ type: 'request', request })));
    this.#timer = setInterval(() => {
      this.#broadcast(frame({ type: 'status', status: this.#options.status(), series: this.#options.feed.series() }));
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  #idle(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #broadcast(text: string): void {
    for (const res of this.#clients) this.#send(res, text);
  }

  #send(res: ServerResponse, text: string): void {
    if (res.destroyed) return;
    if (res.writableLength > this.#options.maxBufferedBytes) {
      res.destroy();
      return;
    }
    res.write(text);
  }
}

function frame(message: LiveMessage): string {
  return `data: ${JSON.stringify(message)}\n\n`;
}
