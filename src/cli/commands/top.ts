/**
 * `failproxy top`: the dashboard's live view in the terminal, against a
 * running `serve`. On a terminal it redraws in place until `q`; piped (or
 * with --json) it prints one JSON snapshot and exits.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { InterruptedError, UsageError } from '../../core/errors.js';
import { colorLevelFor } from '../../logging/pretty.js';
import type { LiveMessage } from '../../server/events.js';
import { liveMessages } from '../live-client.js';

interface RawTopOptions {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

const RECONNECT_MS = 2000;

export function topCommand(): Command {
  return new Command('top')
    .description(
      'live view of a running server: endpoint states, success, latency, tokens, cost and the latest requests',
    )
    .option('--url <url>', 'the server to watch (default $FAILPROXY_URL or http://127.0.0.1:8000)')
    .option('--api-key <key>', "one of the server's client keys (default: the first of $FAILPROXY_API_KEYS)")
    .option('--json', 'print one JSON snapshot and exit (what a pipe gets)')
    .action(async (raw: RawTopOptions) => {
      const url = serverUrl(raw.url ?? process.env.FAILPROXY_URL ?? 'http://127.0.0.1:8000');
      const apiKey = raw.apiKey ?? (process.env.FAILPROXY_API_KEYS ?? '').split(',')[0]?.trim() ?? undefined;
      if (raw.json === true || process.stdout.isTTY !== true) return snapshot(url, apiKey || undefined);
      return live(url, apiKey || undefined);
    });
}

function serverUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value.includes('://') ? value : `http://${value}`);
  } catch {
    throw new UsageError(`--url expects the server's address like http://127.0.0.1:8000, got "${value}"`);
  }
  // `serve` prints its URL with /v1; accept it as printed.
  return `${url.protocol}//${url.host}`;
}

async function snapshot(url: string, apiKey: string | undefined): Promise<void> {
  const controller = new AbortController();
  for await (const message of liveMessages(url, apiKey, controller.signal)) {
    if (message.type !== 'snapshot') continue;
    controller.abort();
    const { type: _type, ...body } = message;
    process.stdout.write(`${JSON.stringify({ url, ...body }, null, 2)}\n`);
    return;
  }
}

async function live(url: string, apiKey: string | undefined): Promise<void> {
  const controller = new AbortController();
  // The first connection must work: a wrong URL or key is an error, not a blank screen.
  const first = liveMessages(url, apiKey, controller.signal);
  const opened = await first.next();
  const { startTtyTopView } = await import('../../ui/run-top-tty.js');
  const view = startTtyTopView({
    url,
    color: colorLevelFor('stdout') > 0,
    ...(opened.done ? {} : { first: opened.value }),
  });
  const pump = (async () => {
    let stream: AsyncGenerator<LiveMessage> = first;
    while (!controller.signal.aborted) {
      try {
        for await (const message of stream) view.dispatch(message);
        if (!controller.signal.aborted)
          view.dispatch({ type: 'disconnected', problem: 'the server closed the stream' });
      } catch (err) {
        view.dispatch({ type: 'disconnected', problem: (err as Error).message });
      }
      await sleep(RECONNECT_MS, undefined, { signal: controller.signal });
      stream = liveMessages(url, apiKey, controller.signal);
    }
  })();
  const onSignal = (): void => void controller.abort();
  process.once('SIGTERM', onSignal);
  const how = await Promise.race([
    view.quit,
    new Promise<'quit'>((resolve) => controller.signal.addEventListener('abort', () => resolve('quit'))),
  ]);
  controller.abort();
  process.off('SIGTERM', onSignal);
  await view.close();
  await pump.catch(() => undefined);
  if (how === 'interrupt') throw new InterruptedError();
}
