/**
 * A client of a running server's `/ui/events` stream (what the dashboard
 * reads), for `failproxy top`. Yields the server's messages as they come.
 */
import { UsageError, WorkFailedError } from '../core/errors.js';
import type { LiveMessage } from '../server/events.js';

/**
 * Connects and yields each message until the stream ends or `signal` aborts.
 * A refused key is a UsageError (exit 2); an unreachable server or another
 * status a WorkFailedError (exit 1).
 */
export async function* liveMessages(
  baseUrl: string,
  apiKey: string | undefined,
  signal: AbortSignal,
): AsyncGenerator<LiveMessage> {
  const url = new URL('/ui/events', baseUrl);
  let res: Response;
  try {
    res = await fetch(url, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {}, signal });
  } catch (err) {
    if (signal.aborted) return;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new WorkFailedError(
      `cannot reach FailProxy at ${baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is \`failproxy serve\` running there?)`,
    );
  }
  if (res.status === 401) {
    await res.body?.cancel();
    throw new UsageError(`${baseUrl} needs an API key: pass --api-key KEY (one of the server's --api-key values)`);
  }
  if (!res.ok || res.body === null) {
    const text = await res.text().catch(() => '');
    throw new WorkFailedError(
      `${url.href} answered ${res.status}${res.status === 404 ? ' (a FailProxy older than the live view?)' : ''}: ${text.slice(0, 200)}`,
    );
  }
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n');
        if (data !== '') yield JSON.parse(data) as LiveMessage;
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}
