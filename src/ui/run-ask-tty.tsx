/**
 * The terminal face of `ask`: engine events -> `askReducer` -> <AskView/>.
 * Loaded with a dynamic import only when stdout is a TTY, so piped runs never
 * load Ink or React.
 *
 * Ctrl-C is the caller's business (a SIGINT handler that aborts the request):
 * Ink never reads the keyboard here (no raw mode, `exitOnCtrlC: false`), so the
 * terminal keeps turning Ctrl-C into SIGINT even when stdin is a pipe.
 */
import { performance } from 'node:perf_hooks';
import { render } from 'ink';
import type { EngineEvent } from '../core/types.js';
import { AskView } from './AskView.js';
import { askReducer, initialAskState, type AskState } from './state.js';

export interface TtyAskOptions {
  group: string;
  showReasoning: boolean;
  color: boolean;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
}

export interface TtyAskView {
  onEvent(event: EngineEvent): void;
  /** Renders the last frame, unmounts (the frame stays on screen) and resolves once it is written. */
  close(): Promise<void>;
}

/** Spinner and elapsed-time refresh. */
const TICK_MS = 80;

export function startTtyAskView(options: TtyAskOptions): TtyAskView {
  const stdout = options.stdout ?? process.stdout;
  let state: AskState = initialAskState(options.group, performance.now());
  const width = () => Math.max(20, stdout.columns || 80);
  const tree = () => (
    <AskView state={state} width={width()} showReasoning={options.showReasoning} color={options.color} />
  );
  const instance = render(tree(), {
    stdout,
    ...(options.stderr ? { stderr: options.stderr } : {}),
    exitOnCtrlC: false,
    patchConsole: false,
  });
  const exited = instance.waitUntilExit();
  const tick = () => {
    state = askReducer(state, { type: 'tick', now: performance.now() });
  };
  const timer = setInterval(() => {
    tick();
    instance.rerender(tree());
  }, TICK_MS);
  const onResize = () => instance.rerender(tree());
  stdout.on('resize', onResize);
  let closed = false;

  return {
    onEvent(event) {
      tick();
      state = askReducer(state, event);
      instance.rerender(tree());
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      stdout.off('resize', onResize);
      tick();
      instance.rerender(tree());
      instance.unmount();
      await exited;
    },
  };
}
