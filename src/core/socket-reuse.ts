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
const watchers = new WeakMap<object, SocketWatcher>();
/** Requests written on each socket so far. */
const writes = new WeakMap<object, number>();

subscribe('undici:request:create', (message) => {
  if (creating === null) return;
  watchers.set((message as { request: object }).request, creating);
  creating = null;
});

subscribe('undici:client:sendHeaders', (message) => {
  const { request, socket } = message as { request: object; socket: object };
  const before = writes.get(socket) ?? 0;
  writes.set(socket, before + 1);
  watchers.get(request)?.onSocket(before > 0);
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
