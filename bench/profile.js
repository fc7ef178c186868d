// CPU-profile FailProxy under load and summarize where its time goes:
//   npm run bench -- --profile [--scenario ns-c16] [--seconds 10] [--log-level info] [--bare http|undici]
//   node bench/profile.js summarize FILE.cpuprofile
// FailProxy runs with `node --cpu-prof` on the proxy core, the driver loads
// it from the other core, SIGTERM makes it exit and write the profile, which
// is copied to bench/results/ (open it in Chrome DevTools for the flame chart).
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BENCH_DIR,
  DRIVER_CORE,
  ROOT,
  canPin,
  pin,
  startBare,
  startDriver,
  startFailProxy,
  writeProfiles,
} from './harness.js';
import { SCENARIOS, requestBody } from './scenarios.js';

const value = (argv, name, fallback) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback);

/** Where a frame lives: FailProxy source (dist/x.js shown as src/x.ts), a package, node internals, or V8. */
function locate(url) {
  if (!url) return '(native/V8)';
  const file = url.replace(/^file:\/\//, '');
  const dist = file.indexOf(`${path.sep}dist${path.sep}`);
  if (file.startsWith(ROOT) && dist !== -1 && !file.includes('node_modules')) {
    return `src/${file.slice(dist + 6).replace(/\.js$/, '.ts')}`;
  }
  const nm = file.lastIndexOf('node_modules/');
  if (nm !== -1) {
    const rest = file.slice(nm + 13).split('/');
    const pkg = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    return `${pkg}: ${rest.slice(rest[0].startsWith('@') ? 2 : 1).join('/')}`;
  }
  if (file.startsWith('node:')) return file;
  return file;
}

const isFailProxy = (where) => where.startsWith('src/');

/**
 * Which part of the process a sample belongs to, looking at its whole stack.
 * On one pinned core, time the libuv threadpool spends writing the log file
 * preempts the main thread and shows up under the fs write call that woke it.
 */
function subsystem(stack) {
  const urls = stack.map((f) => f.url);
  if (urls.some((u) => u.includes('internal/fs/streams'))) return 'log file writes (fs.WriteStream -> threadpool)';
  const mine = stack.find((f) => isFailProxy(locate(f.url)));
  if (mine) return `FailProxy code and what it calls: ${locate(mine.url)}`;
  if (urls.some((u) => u.includes('/undici/'))) return 'undici (upstream client) outside FailProxy frames';
  if (urls.some((u) => u.includes('prom-client'))) return 'prom-client';
  if (urls.some((u) => /node:_http_/.test(u))) return 'node:http server outside FailProxy frames';
  const leaf = stack[0]?.functionName ?? '';
  if (leaf === '(garbage collector)') return '(garbage collector)';
  if (urls.some((u) => u.includes('stream_base_commons') || u === 'node:net'))
    return 'socket I/O outside FailProxy frames';
  return '(other: runtime, microtasks, timers)';
}

/** `window`: [fromUs, toUs] on the profile's clock; samples outside it (startup, shutdown) are left out. */
export function summarizeProfile(profile, window = null, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window && (t < window[0] || t > window[1])) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfUs.entries()]
    .filter(([id]) => byId.get(id).callFrame.functionName === '(idle)')
    .reduce((a, [, us]) => a + us, 0);
  const busy = total - idle;

  const fn = new Map();
  const file = new Map();
  const owner = new Map();
  const area = new Map();
  const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    const where = locate(url);
    add(fn, `${functionName || '(anonymous)'}  ${where}${url ? `:${lineNumber + 1}` : ''}`, us);
    add(file, where, us);
    // The nearest FailProxy frame on the stack: which of our code paid for this time.
    let cursor = id;
    let mine = null;
    while (cursor !== undefined) {
      const frame = byId.get(cursor).callFrame;
      const w = locate(frame.url);
      if (isFailProxy(w)) {
        mine = `${frame.functionName || '(anonymous)'}  ${w}:${frame.lineNumber + 1}`;
        break;
      }
      cursor = parent.get(cursor);
    }
    add(owner, mine ?? '(no FailProxy frame: runtime, GC, I/O callbacks)', us);
    const stack = [];
    for (let c = id; c !== undefined; c = parent.get(c)) stack.push(byId.get(c).callFrame);
    add(area, subsystem(stack), us);
  }
  const rank = (map, n) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000, pctOfBusy: (100 * us) / busy }));
  return {
    windowed: window !== null,
    totalMs: total / 1000,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    selfTime: rank(fn, top),
    files: rank(file, 15),
    nearestFailProxyFrame: rank(owner, 15),
    areas: rank(area, 20),
  };
}

export function printSummary(summary) {
  const lines = [];
  const section = (title, rows) => {
    lines.push('', title);
    for (const r of rows)
      lines.push(`  ${r.pctOfBusy.toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`);
  };
  lines.push(
    `profile: ${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle (percentages are of busy time)`,
  );
  section('Top self time by function:', summary.selfTime);
  section('Self time by file:', summary.files);
  section('Self time charged to the nearest FailProxy frame on the stack:', summary.nearestFailProxyFrame);
  section('Where the time goes (by stack):', summary.areas);
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function runProfile(argv) {
  const key = value(argv, '--scenario', 'ns-c16');
  const seconds = Number(value(argv, '--seconds', '10'));
  const scenario = SCENARIOS.find((s) => s.key === key && !s.hold);
  if (!scenario)
    throw new Error(
      `unknown scenario ${key} (try ${SCENARIOS.filter((s) => !s.hold)
        .map((s) => s.key)
        .join(', ')})`,
    );
  if (canPin()) pin(process.pid, DRIVER_CORE);
  const tmp = mkdtempSync(path.join(tmpdir(), 'failproxy-prof-'));
  const driver = await startDriver();
  try {
    writeProfiles(path.join(tmp, 'profiles'), driver.ports);
    const profDir = path.join(tmp, 'cpuprof');
    const nodeArgs = ['--cpu-prof', '--cpu-prof-dir', profDir];
    // --bare http|undici: profile the baseline instead, to see what any Node proxy pays.
    const bare = value(argv, '--bare');
    const failproxy = bare
      ? await startBare(bare, nodeArgs)
      : await startFailProxy({
          profilesDir: path.join(tmp, 'profiles'),
          logDir: path.join(tmp, 'logs'),
          nodeArgs,
          logLevel: value(argv, '--log-level', 'info'),
        });
    let result;
    try {
      if (scenario.group === 'cooled') {
        // Open the cooldown first, as run.js does.
        await driver.load({
          port: failproxy.port,
          upstreamPort: driver.ports.json,
          body: requestBody(scenario),
          concurrency: 1,
          warmupMs: 0,
          durationMs: 50,
          pid: failproxy.pid,
        });
      }
      result = await driver.load({
        port: failproxy.port,
        upstreamPort: driver.ports[scenario.upstream],
        body: requestBody(scenario),
        concurrency: scenario.concurrency,
        warmupMs: 1000,
        durationMs: seconds * 1000,
        pid: failproxy.pid,
      });
    } finally {
      await failproxy.stop();
    }
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('FailProxy exited without writing a .cpuprofile');
    const resultsDir = path.join(BENCH_DIR, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const kept = path.join(
      resultsDir,
      `${failproxy.name}-${key}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`,
    );
    copyFileSync(path.join(profDir, file), kept);
    const windowUs = result.windowMs * 1000;
    const other =
      result.machineCpuUs !== null
        ? (100 * (result.machineCpuUs - result.proxyCpuUs - result.driverCpuUs)) / windowUs
        : null;
    process.stdout.write(
      `${scenario.title}: ${result.perSecond.toFixed(0)} req/s, ${(result.proxyCpuUs / result.completed).toFixed(0)} µs CPU/req` +
        ` (profiler overhead included); other processes used ${other === null ? '?' : Math.max(0, other).toFixed(0)}% of a core\n`,
    );
    printSummary(summarizeProfile(JSON.parse(readFileSync(kept, 'utf8')), result.windowMonoUs));
    process.stdout.write(`\nprofile: ${path.relative(process.cwd(), kept)}\n`);
  } finally {
    await driver.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [command, file] = process.argv.slice(2);
  if (command === 'summarize' && file) printSummary(summarizeProfile(JSON.parse(readFileSync(file, 'utf8'))));
  else await runProfile(process.argv.slice(2));
}
