/**
 * The `failproxy` program. This is the only place that decides the exit code
 * (SPEC §5): 0 success, 1 the work failed, 2 usage or configuration error,
 * 130 interrupted. Commands throw typed errors and never exit themselves.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError, FailProxyError, InterruptedError, UsageError, WorkFailedError } from '../core/errors.js';
import { askCommand } from './commands/ask.js';
import { logsCommand } from './commands/logs.js';
import { serveCommand } from './commands/serve.js';
import { testEndpointsCommand } from './commands/test-endpoints.js';
import { topCommand } from './commands/top.js';
import { checkCommand } from './commands/check.js';
import { replayCommand } from './commands/replay.js';
import { initCommand } from './commands/init.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function buildProgram(): Command {
  const program = new Command('failproxy')
    .description('An OpenAI-compatible proxy that fails over across model endpoints.')
    .version(version, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  for (const command of [serveCommand(), askCommand(), testEndpointsCommand(), logsCommand(), topCommand(), checkCommand(), replayCommand(), initCommand()]) {
    program.addCommand(command.exitOverride().showHelpAfterError());
  }
  return program;
}

/** Map whatever ended the command to an exit code, writing the reason to stderr. */
function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version are successes; every other commander error is misuse.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof InterruptedError) return 130;
  if (err instanceof FailProxyError) {
    process.stderr.write(`failproxy: ${err.message}\n`);
    if (err instanceof UsageError || err instanceof ConfigError) return 2;
    if (err instanceof WorkFailedError) return 1;
    return 1;
  }
  process.stderr.write(`failproxy: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}

async function main(): Promise<number> {
  try {
    await buildProgram().parseAsync(process.argv);
    return 0;
  } catch (err) {
    return exitCodeFor(err);
  }
}

const code = await main();
// Commands close what they opened; exiting here also ends any handle a
// library left behind (stdout and stderr are synchronous for files and pipes).
// eslint-disable-next-line no-restricted-properties -- the one place that ends the process
process.exit(code);
