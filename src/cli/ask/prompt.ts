/**
 * Where the `ask` prompt comes from (SPEC §5): the arguments, and stdin when it
 * is not a terminal — arguments, a blank line, then stdin.
 *
 * Pipes and files are read to EOF, however long the producer takes
 * (`slow-command | failproxy ask "summarize"`). Some runners (CI agents,
 * process supervisors) hand a child a socket for stdin that nobody ever writes
 * to or closes; waiting for its EOF would hang forever, so on anything that is
 * not a pipe, file or device we give up when no data arrived within a grace
 * period. Once data flows we read to EOF.
 */
import { fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import type { Readable } from 'node:stream';

/** How long a non-pipe stdin may stay silent before it counts as empty. */
export const SILENT_STDIN_GRACE_MS = 1000;
/** When reading a pipe takes this long without any data, say on stderr what we wait for. */
export const STDIN_HINT_MS = 3000;

export type StdinKind = 'tty' | 'eof' | 'maybe-open' | 'none';

/** What fd 0 is, decided without creating `process.stdin`. */
export function stdinKind(fd = 0): StdinKind {
  if (isatty(fd)) return 'tty';
  try {
    const stat = fstatSync(fd);
    // A character device that is not a TTY is /dev/null and the like: EOF at once.
    return stat.isFIFO() || stat.isFile() || stat.isCharacterDevice() ? 'eof' : 'maybe-open';
  } catch {
    // Closed (`<&-`): there is nothing to read.
    return 'none';
  }
}

export interface ReadStreamOptions {
  /** Give up (and destroy the stream) when no data arrived within this time. */
  firstDataTimeoutMs?: number;
  /** Called once when no data arrived within `STDIN_HINT_MS`. */
  onSlow?: () => void;
  hintMs?: number;
}

/** The stream's text, or null when it gave no data before the timeout. */
export function readStreamText(stream: Readable, options: ReadStreamOptions = {}): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const parts: string[] = [];
    let gotData = false;
    stream.setEncoding('utf8');
    const timers: NodeJS.Timeout[] = [];
    const finish = (error: Error | null, text: string | null) => {
      for (const t of timers) clearTimeout(t);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      if (error) reject(error);
      else resolve(text);
    };
    const onData = (part: string) => {
      gotData = true;
      parts.push(part);
    };
    const onEnd = () => finish(null, parts.join(''));
    const onError = (err: Error) => finish(err, null);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
    if (options.firstDataTimeoutMs !== undefined) {
      timers.push(
        setTimeout(() => {
          if (gotData) return;
          finish(null, null);
          stream.destroy();
        }, options.firstDataTimeoutMs),
      );
    }
    if (options.onSlow) {
      const onSlow = options.onSlow;
      timers.push(
        setTimeout(() => {
          if (!gotData) onSlow();
        }, options.hintMs ?? STDIN_HINT_MS),
      );
    }
  });
}

export interface StdinPromptOptions {
  kind?: StdinKind;
  stdin?: Readable;
  stderr?: { write(text: string): unknown };
}

/** Stdin's text for the prompt, or null when stdin is a terminal, closed, empty or silent. */
export async function readStdinPrompt(options: StdinPromptOptions = {}): Promise<string | null> {
  const kind = options.kind ?? stdinKind();
  if (kind === 'tty' || kind === 'none') return null;
  const stdin = options.stdin ?? process.stdin;
  const stderr = options.stderr ?? process.stderr;
  const text =
    kind === 'eof'
      ? await readStreamText(stdin, {
          onSlow: () =>
            stderr.write('failproxy: reading the prompt from stdin (end it with Ctrl-D, or give </dev/null)\n'),
        })
      : await readStreamText(stdin, { firstDataTimeoutMs: SILENT_STDIN_GRACE_MS });
  return text;
}

/** Arguments, a blank line, then stdin; null when both are empty. */
export function composePrompt(args: readonly string[], stdinText: string | null): string | null {
  const fromArgs = args.join(' ').trim();
  // Trailing newlines are an artefact of `echo` and files, not part of the prompt.
  const fromStdin = (stdinText ?? '').replace(/\s+$/, '');
  const parts = [fromArgs, fromStdin.trim() === '' ? '' : fromStdin].filter((p) => p !== '');
  return parts.length > 0 ? parts.join('\n\n') : null;
}
