/**
 * `failproxy top`: a pure reducer from the server's live messages (the same
 * `/ui/events` stream the dashboard reads) to what the terminal shows.
 */
import type { LiveMessage } from '../server/events.js';
import type { FeedRequest, SeriesPoint } from '../server/feed.js';
import type { StatusBody } from '../server/status.js';

export type TopConnection = 'connecting' | 'live' | 'reconnecting';

export interface TopState {
  url: string;
  connection: TopConnection;
  /** Why the last connection ended, while reconnecting. */
  problem: string | null;
  status: StatusBody | null;
  series: SeriesPoint[];
  /** Newest first. */
  recent: FeedRequest[];
  /** Wall clock (ms), for "cooling for 4 m 12 s". */
  now: number;
}

export type TopEvent =
  LiveMessage | { type: 'tick'; now: number } | { type: 'connected' } | { type: 'disconnected'; problem: string };

/** Requests kept for the feed. */
export const TOP_RECENT = 50;

export function initialTopState(url: string, now: number): TopState {
  return { url, connection: 'connecting', problem: null, status: null, series: [], recent: [], now };
}

export function topReducer(state: TopState, event: TopEvent): TopState {
  switch (event.type) {
    case 'tick':
      return { ...state, now: event.now };
    case 'connected':
      return { ...state, connection: 'live', problem: null };
    case 'disconnected':
      return { ...state, connection: 'reconnecting', problem: event.problem };
    case 'snapshot':
      return {
        ...state,
        connection: 'live',
        problem: null,
        status: event.status,
        series: event.series,
        recent: [...event.recent].reverse().slice(0, TOP_RECENT),
      };
    case 'status':
      return { ...state, status: event.status, series: event.series };
    case 'request':
      return { ...state, recent: [event.request, ...state.recent].slice(0, TOP_RECENT) };
  }
}
