/**
 * A spinner whose frame comes from the clock in props, so it needs no timer of
 * its own: the runner ticks the state, and tests get a deterministic frame.
 */
import { Text } from 'ink';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const FRAME_MS = 80;

export function spinnerFrame(now: number): string {
  return FRAMES[Math.floor(now / FRAME_MS) % FRAMES.length] ?? FRAMES[0]!;
}

export function Spinner({ now, color }: { now: number; color: boolean }) {
  return <Text {...(color ? { color: 'cyan' } : {})}>{spinnerFrame(now)}</Text>;
}
