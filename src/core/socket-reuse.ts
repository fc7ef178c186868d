/**
 * Whether an upstream request went out on a kept-alive connection that had
 * already carried a request (SPEC §3.11 "at most once"). Only such a request
 * may be resent after the connection dies before any response byte: the
 * upstream most likely closed the idle socket just as we reused it, as Go's
 * net/http reasons. On a fresh connection the upstream may well have read —
 * and be billing — the request, so it is never sent again there.
 *
 * undici does not tell a handler which socket carries its request, but it
 * publishes both moments on diagnostics channels, synchronously: the request
 * is created inside `dispatch()`, and its headers are written to a socket
 * (`undici:client:sendHeaders`).
 */
import { subscribe } from 'node:diagnostics_channel';
import type { Dispatcher } from 'undici';

export interface SocketWatcher {
  /** The request was written to a socket; `reused`: that socket had carried a request before. */
  onSocket(reused: boolean): void;
}

/** The watcher whose request undici is creating right now. */
let creating: SocketWatcher | null = null;
/**
 * Kept on undici's own request and socket objects under private symbols, not
 * in WeakMaps: a WeakMap keyed by every request made V8's scavenges walk an
 * ephemeron table per request, which cost the non-streaming path ~0.4x of the
 * bare pass-through's CPU per request (bench ns-c16, #18).
 */
const WATCHER = Symbol('failproxy.watcher');
/** Set on a socket once it has carried a request. */
const USED = Symbol('failproxy.used');

subscribe('undici:request:create', (message) => {
  if (creating === null) return;
  (message as { request: { [WATCHER]?: SocketWatcher } }).request[WATCHER] = creating;
  creating = null;
});

subscribe('undici:client:sendHeaders', (message) => {
  const { request, socket } = message as { request: { [WATCHER]?: SocketWatcher }; socket: { [USED]?: boolean } };
  const reused = socket[USED] === true;
  if (!reused) socket[USED] = true;
  request[WATCHER]?.onSocket(reused);
});

/**
 * `dispatcher.dispatch(options, handler)`, telling `handler` which kind of
 * socket its request goes out on. A request the dispatcher queues (or a
 * dispatcher that is not undici's) is never reported: taken as fresh.
 */
export function dispatchWatched(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler & SocketWatcher): void {
  creating = handler;
  try {
    dispatcher.dispatch(options, handler);
  } finally {
    creating = null;
  }
}
