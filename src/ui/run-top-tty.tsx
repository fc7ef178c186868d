/**
 * The terminal face of `failproxy top`: live messages -> `topReducer` ->
 * <TopView/>, redrawn in place. Keys are read here (raw mode), not in a
 * component: `q` quits, Ctrl-C interrupts.
 */
import { render } from 'ink';
import { TopView } from './TopView.js';
import { initialTopState, topReducer, type TopEvent, type TopState } from './top-state.js';

export interface TtyTopOptions {
  url: string;
  color: boolean;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  /** Applied before the first frame (the snapshot that opened the connection). */
  first?: TopEvent;
}

export interface TtyTopView {
  dispatch(event: TopEvent): void;
  /** Resolves with how the user left: `q` or Ctrl-C. */
  quit: Promise<'quit' | 'interrupt'>;
  close(): Promise<void>;
}

/** Redraw at least this often, so cooldown countdowns move. */
const TICK_MS = 1000;

export function startTtyTopView(options: TtyTopOptions): TtyTopView {
  const stdout = options.stdout ?? process.stdout;
  const stdin = options.stdin ?? process.stdin;
  let state: TopState = initialTopState(options.url, Date.now());
  if (options.first) state = topReducer(state, options.first);
  const tree = () => (
    <TopView
      state={state}
      width={Math.max(40, stdout.columns || 100)}
      height={Math.max(10, stdout.rows || 30)}
      color={options.color}
    />
  );
  const instance = render(tree(), { stdout, exitOnCtrlC: false, patchConsole: false });
  const exited = instance.waitUntilExit();
  const timer = setInterval(() => dispatch({ type: 'tick', now: Date.now() }), TICK_MS);
  const onResize = () => instance.rerender(tree());
  stdout.on('resize', onResize);

  let leave: (how: 'quit' | 'interrupt') => void = () => undefined;
  const quit = new Promise<'quit' | 'interrupt'>((resolve) => (leave = resolve));
  const onKey = (data: Buffer): void => {
    const key = data.toString('utf8');
    if (key === 'q' || key === 'Q') leave('quit');
    else if (key === '\u0003') leave('interrupt');
  };
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  stdin.on('data', onKey);
  stdin.resume();

  function dispatch(event: TopEvent): void {
    state = topReducer(state, event);
    instance.rerender(tree());
  }

  return {
    dispatch,
    quit,
    async close() {
      clearInterval(timer);
      stdout.off('resize', onResize);
      stdin.off('data', onKey);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      instance.unmount();
      await exited;
    },
  };
}
