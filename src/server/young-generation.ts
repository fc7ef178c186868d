/**
 * Keeps V8's young generation small in a long-running `serve`, without a flag
 * the user has to know.
 *
 * A burst of traffic makes V8 grow the semi-spaces to their maximum (16 MiB
 * each on Node 20, 64 MiB on Node 24) and RSS keeps that long after. Most of
 * FailProxy's memory per open stream was that growth, not the stream: 512
 * slow streams cost ~73 KB each over idle by default and ~39 KB with
 * `--max-semi-space-size=8` (bench `hold512`, #18).
 *
 * `--max-semi-space-size` is read once, when the heap is set up, so setting it
 * from inside the process does nothing (measured). The growth factor is read
 * each time a scavenge grows the space, so after every minor GC this looks at
 * the new space and stops growth (factor 1) once it has reached the cap, and
 * allows it again (V8's factor 2) when V8 has shrunk it below. The check runs
 * after the GC, so one burst can overshoot the cap by one doubling at most.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** Semi-space size the young generation may grow to (V8's flag is in MiB too). */
export const SEMI_SPACE_CAP_MB = 8;
const V8_GROWTH_FACTOR = 2;

/** Whether the user chose the young generation size themselves (then it is left alone). */
function userSized(): boolean {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return flags.some((flag) => /^--(max|min)[-_]semi[-_]space[-_]size\b/.test(flag));
}

/** Starts the cap; returns what stops it. */
export function capYoungGeneration(semiSpaceMb = SEMI_SPACE_CAP_MB): () => void {
  if (userSized()) return () => {};
  // `new_space` counts both semi-spaces.
  const capBytes = 2 * semiSpaceMb * 1024 * 1024;
  let capped = false;
  // Called after GCs (a batch at a time); major ones are rare enough not to filter out.
  const observer = new PerformanceObserver(() => {
    const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
    if (newSpace === undefined) return;
    const full = newSpace.space_size >= capBytes;
    if (full === capped) return;
    capped = full;
    try {
      setFlagsFromString(`--semi-space-growth-factor=${full ? 1 : V8_GROWTH_FACTOR}`);
    } catch {
      // A V8 without the flag keeps its own sizing; nothing else depends on it.
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    observer.disconnect();
    if (capped) setFlagsFromString(`--semi-space-growth-factor=${V8_GROWTH_FACTOR}`);
  };
}
