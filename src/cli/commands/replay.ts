/**
 * `failproxy replay ID [-g GROUP]`: send a captured request (`serve
 * --capture`) through a group again, in-process as `ask` does, and show its
 * outcome beside the original's. Exit 0 when the replay was answered, 1 when not.
 */
import { Command } from 'commander';
import { FailoverEngine } from '../../core/engine.js';
import { UsageError, WorkFailedError } from '../../core/errors.js';
import { registerSecrets } from '../../core/redact.js';
import { LogObserver } from '../../logging/observer.js';
import { formatCost, groupPrices } from '../../logging/usage.js';
import { readCapture } from '../../server/capture.js';
import { RequestFeed, type FeedRequest } from '../../server/feed.js';
import { UsageMeter } from '../../server/usage-meter.js';
import { formatDuration } from '../../ui/format.js';
import { formatFeedChain } from '../../ui/top-format.js';
import { createLogger, inProcessContext, loadGroupsOrFail, resolveCaptureDir, withCommonOptions } from '../common.js';

interface RawReplayOptions {
  group?: string;
  capture?: string;
  json?: boolean;
  profiles?: string;
  logDir?: string;
}

export function replayCommand(): Command {
  return withCommonOptions(
    new Command('replay')
      .description('send a captured request (serve --capture) through a group again and compare the outcomes')
      .argument('<id>', 'the request id (x-request-id, or from failproxy logs)')
      .option('-g, --group <group>', 'the group to send it through (default: the one it went to)')
      .option('--capture <dir>', 'the capture directory (default $FAILPROXY_CAPTURE_DIR or ./captures)')
      .option('--json', 'print {original, replay} as JSON'),
  ).action(async (id: string, raw: RawReplayOptions) => replay(id, raw));
}

async function replay(id: string, raw: RawReplayOptions): Promise<void> {
  const dir = resolveCaptureDir(raw.capture);
  const capture = await readCapture(dir, id);
  if (capture === null)
    throw new UsageError(`no capture of request "${id}" in ${dir} (serve --capture DIR saves failed requests)`);
  if (capture.request === null)
    throw new WorkFailedError(
      `the capture of "${id}" has no body: it was ${capture.too_large_bytes ?? '?'} bytes, over the capture cap`,
    );
  const loaded = await loadGroupsOrFail(raw.profiles);
  const name = raw.group ?? capture.original.group;
  const group = loaded.groups.get(name);
  if (group === undefined)
    throw new UsageError(`unknown group '${name}'; groups: ${[...loaded.groups.keys()].sort().join(', ')}`);
  registerSecrets(group.endpoints.map((e) => e.apikey));

  const engine = new FailoverEngine();
  const logger = createLogger(raw.logDir);
  const priceOf = groupPrices(group);
  const usage = new UsageMeter(priceOf);
  const feed = new RequestFeed(usage);
  let result: FeedRequest | null = null;
  feed.subscribe((r) => (result = r));
  const body = { ...capture.request, model: group.name };
  const context = inProcessContext(group.name, body);
  const observers = [new LogObserver(logger, { priceOf }), feed];
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  let answer = '';
  try {
    for await (const event of engine.run({ requestId: context.requestId, group, body, signal: controller.signal })) {
      for (const o of observers) o.onEvent(context, event);
      if (event.type === 'chunks') for (const c of event.chunks) answer += c.choices[0]?.delta.content ?? '';
      if (event.type === 'completion') answer = event.completion.choices[0]?.message.content ?? '';
    }
  } finally {
    process.off('SIGINT', onSigint);
    await engine.close();
    await logger.close();
  }
  const replayed = result as FeedRequest | null;
  if (replayed === null) throw new WorkFailedError('the replay ended without an outcome');
  if (raw.json === true) {
    process.stdout.write(
      `${JSON.stringify({ original: capture.original, replay: { ...replayed, answer } }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(`${sideBySide(capture.original, replayed).join('\n')}\n`);
    if (capture.redacted_content)
      process.stdout.write(
        '\n(the capture was made with --capture-redact-content: the replay sent placeholders, not the original text)\n',
      );
    if (answer !== '') process.stdout.write(`\n${answer}\n`);
  }
  if (replayed.outcome !== 'ok')
    throw new WorkFailedError(
      `the replay through ${group.name} got no answer either (${replayed.outcome}, ${replayed.status})`,
    );
}

/** Two columns, original and replay, one row per fact. */
function sideBySide(original: FeedRequest, replayed: FeedRequest): string[] {
  const column = (r: FeedRequest): string[] => [
    r.group,
    `${r.outcome} ${r.status}`,
    r.endpoint ?? '—',
    formatFeedChain(r),
    formatDuration(r.ms),
    r.usage !== null
      ? `${r.usage.prompt_tokens} in / ${r.usage.completion_tokens} out${r.usage.cost !== null ? ` ${formatCost(r.usage.cost)}` : ''}`
      : '—',
  ];
  const labels = ['group', 'outcome', 'answered by', 'attempts', 'time', 'tokens'];
  const left = column(original);
  const right = column(replayed);
  const lw = Math.max(...labels.map((l) => l.length));
  const cw = Math.max(`original ${original.ts}`.length, ...left.map((c) => c.length));
  const row = (label: string, a: string, b: string): string => `${label.padEnd(lw)}  ${a.padEnd(cw)}  ${b}`.trimEnd();
  return [
    row('', `original ${original.ts}`, 'replay (now)'),
    ...labels.map((l, i) => row(l, left[i] ?? '', right[i] ?? '')),
  ];
}
