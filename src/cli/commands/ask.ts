/**
 * `failproxy ask` (SPEC §5): one prompt through a group, in-process (no
 * server). On a terminal it shows the failover live with Ink; piped, it prints
 * only the answer. Both faces read the same engine events, and the log gets
 * the same `request` / `attempt` lines as `serve` (source `ask`).
 */
import { Command } from 'commander';
import { FailoverEngine } from '../../core/engine.js';
import { InterruptedError, UsageError, WorkFailedError } from '../../core/errors.js';
import type { ChatMessage, ChatRequest, EngineEvent, Group } from '../../core/types.js';
import { groupNameOf } from '../../config/profiles.js';
import { isEmbeddingsGroup } from '../../core/embeddings/types.js';
import type { ConfigProblem } from '../../config/profiles.js';
import { startDemoUpstreams, type DemoUpstreams } from '../../demo/upstreams.js';
import { LogObserver } from '../../logging/observer.js';
import { groupPrices } from '../../logging/usage.js';
import { colorLevelFor, colorsFor, formatDuration } from '../../logging/pretty.js';
import { PlainAskOutput } from '../ask/plain.js';
import { composePrompt, readStdinPrompt } from '../ask/prompt.js';
import type { AskRenderer } from '../ask/renderer.js';
import { createLogger, describeProblems, describeStartupProblems, inProcessContext, loadGroupsOrFail, withCommonOptions } from '../common.js';

interface RawAskOptions {
  group?: string;
  system?: string;
  temperature?: string;
  maxTokens?: string;
  stream: boolean;
  json?: boolean;
  showReasoning?: boolean;
  verbose?: boolean;
  demo?: boolean;
  profiles?: string;
  logDir?: string;
}

export interface AskOptions {
  group: string | undefined;
  system: string | undefined;
  temperature: number | undefined;
  maxTokens: number | undefined;
  stream: boolean;
  json: boolean;
  showReasoning: boolean;
  verbose: boolean;
  demo: boolean;
  profiles: string | undefined;
  logDir: string | undefined;
}

type TerminalEvent = Extract<EngineEvent, { type: 'done' | 'failed' | 'interrupted' | 'cancelled' }>;

export function askCommand(): Command {
  const command = new Command('ask')
    .description('Send one prompt through a group and print the answer (live failover status on a terminal).')
    .argument('[prompt...]', 'the prompt; stdin is appended after a blank line when it is not a terminal')
    .option('-g, --group <group>', 'the group to ask (default: $FAILPROXY_GROUP, or the only group)')
    .option('-s, --system <text>', 'system message')
    .option('-t, --temperature <n>', 'sampling temperature')
    .option('--max-tokens <n>', 'maximum tokens in the answer')
    .option('--no-stream', 'ask for the whole answer at once instead of a stream')
    .option('--json', 'print the final chat.completion JSON, with the attempt trace under "failproxy"')
    .option('--show-reasoning', "show the model's reasoning (dimmed; on stderr when piped)")
    .option('-v, --verbose', 'piped: one line per attempt on stderr')
    .option('--demo', 'add the built-in demo group (and ask it when -g is not given)');
  return withCommonOptions(command).action(async (words: string[], raw: RawAskOptions) => {
    await runAsk(words, parseAskOptions(raw));
  });
}

export function parseAskOptions(raw: RawAskOptions): AskOptions {
  return {
    group: raw.group,
    system: raw.system,
    temperature: parseNumber('--temperature', raw.temperature),
    maxTokens: parsePositiveInt('--max-tokens', raw.maxTokens),
    stream: raw.stream,
    json: raw.json === true,
    showReasoning: raw.showReasoning === true,
    verbose: raw.verbose === true,
    demo: raw.demo === true,
    profiles: raw.profiles,
    logDir: raw.logDir,
  };
}

function parseNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`${name} expects a number >= 0, got "${value}"`);
  }
  return n;
}

function parsePositiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${name} expects a whole number >= 1, got "${value}"`);
  }
  return n;
}

/**
 * -g, else `demo` with --demo, else $FAILPROXY_GROUP, else the only group.
 * Unknown or ambiguous is a usage error that lists the groups.
 */
export function chooseGroup(
  names: readonly string[],
  options: { flag: string | undefined; demo: boolean; env: NodeJS.ProcessEnv },
  problems: readonly ConfigProblem[] = [],
): string {
  const env = options.env.FAILPROXY_GROUP?.trim();
  const fromEnv = options.flag === undefined && !options.demo && env !== undefined && env !== '';
  const wanted = options.flag ?? (options.demo ? 'demo' : fromEnv ? env : undefined);
  const list = names.length > 0 ? [...names].sort().join(', ') : '(none)';
  if (wanted === undefined) {
    if (names.length === 1) return names[0]!;
    throw new UsageError(`which group? Pass -g GROUP or set FAILPROXY_GROUP; groups: ${list}`);
  }
  if (names.includes(wanted)) return wanted;
  // A group whose file is broken is not "unknown": say why it is missing.
  const why = problems.filter((p) => p.severity === 'error' && groupNameOf(p.file) === wanted);
  const reasons = why.length > 0 ? `\n  ${describeProblems(why).join('\n  ')}` : '';
  const source = fromEnv ? ' (from FAILPROXY_GROUP)' : '';
  throw new UsageError(`unknown group '${wanted}'${source}; groups: ${list}${reasons}`);
}

async function runAsk(words: string[], options: AskOptions): Promise<void> {
  const loaded = await loadGroupsOrFail(options.profiles, options.demo);
  const names = [...loaded.groups.keys()];
  if (options.demo && !names.includes('demo')) names.push('demo');
  const groupName = chooseGroup(names, { flag: options.group, demo: options.demo, env: process.env }, loaded.problems);
  if (options.verbose) {
    for (const line of describeStartupProblems(loaded.groups.values(), loaded.problems, groupName)) process.stderr.write(`failproxy: ${line}\n`);
  }

  const prompt = composePrompt(words, await readStdinPrompt());
  if (prompt === null) throw new UsageError('no prompt: pass it as arguments or on stdin');

  let demo: DemoUpstreams | null = null;
  try {
    let group: Group | undefined;
    if (groupName === 'demo' && options.demo) {
      demo = await startDemoUpstreams();
      group = demo.group;
    } else {
      group = loaded.groups.get(groupName);
    }
    if (group === undefined) throw new UsageError(`unknown group '${groupName}'`);
    if (isEmbeddingsGroup(group)) throw new UsageError(`group '${groupName}' is an embeddings group (kind: embeddings); ask needs a chat group`);
    const terminal = await askGroup(group, buildRequest(group.name, prompt, options), options);
    settle(terminal, group);
  } finally {
    await demo?.close();
  }
}

export function buildRequest(
  group: string,
  prompt: string,
  options: Pick<AskOptions, 'system' | 'temperature' | 'maxTokens' | 'stream'>,
): ChatRequest {
  const messages: ChatMessage[] = [];
  if (options.system !== undefined) messages.push({ role: 'system', content: options.system });
  messages.push({ role: 'user', content: prompt });
  const body: ChatRequest = { model: group, messages, stream: options.stream };
  if (options.temperature !== undefined) body.temperature = options.temperature;
  if (options.maxTokens !== undefined) body.max_tokens = options.maxTokens;
  if (options.stream) body.stream_options = { include_usage: true };
  return body;
}

/** Run the request through the engine, feeding the logger and the chosen renderer. */
async function askGroup(group: Group, body: ChatRequest, options: AskOptions): Promise<TerminalEvent | null> {
  let logErrorShown = false;
  const logger = createLogger(options.logDir, (err) => {
    if (logErrorShown) return;
    logErrorShown = true;
    process.stderr.write(`failproxy: cannot write the log: ${err.message}\n`);
  });
  const observer = new LogObserver(logger, { priceOf: groupPrices(group) });
  const context = inProcessContext(group.name, body);
  const controller = new AbortController();
  // Not `once`: Ink's signal-exit kills the process on SIGINT when no other listener is left.
  const onSigint = () => controller.abort(new InterruptedError());
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    // The reader went away (`| head`): stop asking, nothing left to show.
    if (err.code === 'EPIPE') controller.abort(new Error('stdout closed'));
  };
  process.on('SIGINT', onSigint);
  process.stdout.on('error', onStdoutError);
  const engine = new FailoverEngine();
  let renderer: AskRenderer | null = null;
  let terminal: TerminalEvent | null = null;
  try {
    renderer = await createRenderer(group.name, options);
    // ask shows reasoning itself (--show-reasoning), so it always takes it as a separate field.
    const run = engine.run({
      requestId: context.requestId,
      group: { ...group, reasoning: 'field' },
      body,
      signal: controller.signal,
    });
    for await (const event of run) {
      observer.onEvent(context, event);
      renderer.onEvent(event);
      if (
        event.type === 'done' ||
        event.type === 'failed' ||
        event.type === 'interrupted' ||
        event.type === 'cancelled'
      ) {
        terminal = event;
      }
    }
  } finally {
    await renderer?.close();
    process.off('SIGINT', onSigint);
    await engine.close();
    await logger.close();
    // The EPIPE listener stays: a late write to a closed pipe must not become an uncaught error.
  }
  if (terminal?.type === 'cancelled' && !(controller.signal.reason instanceof InterruptedError)) return null;
  return terminal;
}

async function createRenderer(group: string, options: AskOptions): Promise<AskRenderer> {
  if (process.stdout.isTTY && !options.json) {
    // Only the terminal face loads Ink and React.
    const { startTtyAskView } = await import('../../ui/run-ask-tty.js');
    return startTtyAskView({ group, showReasoning: options.showReasoning, color: colorLevelFor('stdout') > 0 });
  }
  return new PlainAskOutput({
    group,
    json: options.json,
    showReasoning: options.showReasoning,
    verbose: options.verbose,
    stdout: process.stdout,
    stderr: process.stderr,
    colors: colorsFor('stderr'),
  });
}

/** Turn the run's end into the command's result: nothing for an answer, a typed error otherwise. */
function settle(terminal: TerminalEvent | null, group: Group): void {
  if (terminal === null) return;
  switch (terminal.type) {
    case 'done':
      return;
    case 'cancelled':
      throw new InterruptedError();
    case 'interrupted':
      throw new WorkFailedError(
        `the answer above is incomplete: ${terminal.summary.endpoint ?? 'the endpoint'} broke off mid-answer ` +
          `(${terminal.failure.class}${terminal.failure.status !== undefined ? ` ${terminal.failure.status}` : ''}: ${terminal.failure.message})`,
      );
    case 'failed':
      throw new WorkFailedError(describeAllFailed(terminal, group));
  }
}

/** One line per endpoint and why it failed (and the skipped ones). */
export function describeAllFailed(event: Extract<EngineEvent, { type: 'failed' }>, group: Group): string {
  const { attempts } = event.summary;
  const lines = attempts.map((a, i) => {
    const status = a.status !== null ? ` ${a.status}` : '';
    const message = a.message !== null && a.message !== '' ? `: ${a.message}` : '';
    return `[${i + 1}] ${a.endpoint}: ${a.class ?? 'failed'}${status} (${formatDuration(a.ms)})${message}`;
  });
  for (const s of group.skipped) lines.push(`${s.name}: skipped: ${s.reason}`);
  const total = attempts.length + group.skipped.length;
  const head =
    total === 0
      ? `group '${group.name}' has no endpoints`
      : `all ${total} endpoint${total === 1 ? '' : 's'} of group '${group.name}' failed`;
  return lines.length > 0 ? `${head}:\n  ${lines.join('\n  ')}` : head;
}
