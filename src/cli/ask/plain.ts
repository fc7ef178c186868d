/**
 * The piped face of `ask`: only the answer on stdout, written as it streams
 * and ended with a newline; reasoning (`--show-reasoning`) and the attempt
 * lines (`-v`) on stderr, so `failproxy ask ... > answer.txt` and pipes get
 * the answer and nothing else. `--json` prints the final `chat.completion`
 * instead, with the attempt trace under `failproxy`.
 */
import { performance } from 'node:perf_hooks';
import type { ChalkInstance } from 'chalk';
import { CompletionAggregator } from '../../core/openai/convert.js';
import type { ChatCompletion, DoneEvent, EngineEvent } from '../../core/types.js';
import { FAIL_MARK, formatAttemptLine, OK_MARK } from '../../ui/format.js';
import { askReducer, initialAskState, type AskState, type AttemptView } from '../../ui/state.js';
import type { AskRenderer, Output } from './renderer.js';

export interface PlainOutputOptions {
  group: string;
  json: boolean;
  showReasoning: boolean;
  verbose: boolean;
  stdout: Output;
  stderr: Output;
  /** Colours for stderr (reasoning dimmed, ✓/✗). */
  colors: ChalkInstance;
}

export class PlainAskOutput implements AskRenderer {
  readonly #options: PlainOutputOptions;
  #state: AskState;
  readonly #aggregator = new CompletionAggregator();
  #completion: ChatCompletion | null = null;
  #wroteAnswer = false;
  #answerEndsWithNewline = false;
  #reasoningOpen = false;
  #reasoningEndsWithNewline = true;

  constructor(options: PlainOutputOptions) {
    this.#options = options;
    this.#state = initialAskState(options.group, performance.now());
  }

  onEvent(event: EngineEvent): void {
    this.#state = askReducer(askReducer(this.#state, { type: 'tick', now: performance.now() }), event);
    switch (event.type) {
      case 'chunks':
        for (const chunk of event.chunks) {
          this.#aggregator.add(chunk);
          const delta = chunk.choices[0]?.delta;
          if (typeof delta?.reasoning_content === 'string') this.#reasoning(delta.reasoning_content);
          if (typeof delta?.content === 'string') this.#answer(delta.content);
        }
        return;
      case 'completion': {
        this.#completion = event.completion;
        const message = event.completion.choices[0]?.message;
        if (typeof message?.reasoning_content === 'string') this.#reasoning(message.reasoning_content);
        if (typeof message?.content === 'string') this.#answer(message.content);
        return;
      }
      case 'attempt_failed':
      case 'attempt_abandoned':
        this.#attemptLine(event.n);
        return;
      case 'done':
        this.#attemptLine(event.summary.attempts.length);
        this.#endText();
        if (this.#options.json) this.#options.stdout.write(`${JSON.stringify(this.#jsonResult(event), null, 2)}\n`);
        return;
      case 'cancelled':
        for (const attempt of this.#state.attempts) if (attempt.status === 'cancelled') this.#attemptLine(attempt.n);
        this.#endText();
        return;
      case 'interrupted':
      case 'failed':
        this.#endText();
        return;
      case 'resume':
        if (this.#options.verbose) {
          this.#closeReasoning();
          this.#options.stderr.write(
            `[${event.n}] ${event.endpoint} resumes the answer (${event.mode}, ${event.reusedChars} characters kept)\n`,
          );
        }
        return;
      case 'attempt_start':
      case 'commit':
        return;
    }
  }

  async close(): Promise<void> {
    // Let everything written reach the pipe before main.ts ends the process.
    await Promise.all([drain(this.#options.stdout), drain(this.#options.stderr)]);
  }

  #answer(text: string): void {
    if (text === '' || this.#options.json) return;
    this.#closeReasoning();
    this.#options.stdout.write(text);
    this.#wroteAnswer = true;
    this.#answerEndsWithNewline = text.endsWith('\n');
  }

  #reasoning(text: string): void {
    if (text === '' || !this.#options.showReasoning) return;
    this.#reasoningOpen = true;
    this.#options.stderr.write(this.#options.colors.dim(text));
    this.#reasoningEndsWithNewline = text.endsWith('\n');
  }

  #closeReasoning(): void {
    if (!this.#reasoningOpen) return;
    this.#reasoningOpen = false;
    if (!this.#reasoningEndsWithNewline) this.#options.stderr.write('\n');
  }

  #endText(): void {
    this.#closeReasoning();
    if (this.#wroteAnswer && !this.#answerEndsWithNewline) this.#options.stdout.write('\n');
    this.#answerEndsWithNewline = true;
  }

  #attemptLine(n: number): void {
    if (!this.#options.verbose) return;
    const attempt = this.#state.attempts.find((a) => a.n === n);
    if (attempt === undefined) return;
    // Keep the answer's last line apart from the diagnostics when both go to one terminal.
    this.#closeReasoning();
    this.#options.stderr.write(`${colorMarks(formatAttemptLine(attempt), attempt, this.#options.colors)}\n`);
  }

  #jsonResult(event: DoneEvent): Record<string, unknown> {
    const completion = this.#completion ?? this.#aggregator.result();
    const { summary } = event;
    return {
      ...completion,
      failproxy: {
        request_id: summary.requestId,
        group: summary.group,
        endpoint: summary.endpoint,
        attempts: summary.attempts,
        ttft_ms: summary.ttftMs,
        ms: summary.ms,
        usage: summary.usage,
      },
    };
  }
}

function colorMarks(line: string, attempt: AttemptView, c: ChalkInstance): string {
  if (attempt.status === 'ok') return line.replace(OK_MARK, c.green(OK_MARK));
  return line.replace(FAIL_MARK, c.red(FAIL_MARK));
}

function drain(output: Output): Promise<void> {
  return new Promise((resolve) => {
    try {
      output.write('', () => resolve());
    } catch {
      resolve();
    }
  });
}
