// Process plumbing shared by run.js and profile.js: CPU pinning, the driver
// child (upstreams + load generator), the proxies under test, the profiles
// FailProxy serves, and RSS sampling.
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { setInterval, clearInterval, setTimeout, clearTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { rssKb } from './procstat.js';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');

/** The proxies run on PROXY_CORE; everything else on DRIVER_CORE. */
export const PROXY_CORE = 0;
export const DRIVER_CORE = 1;

let pinning;
/** taskset exists and there are at least two cores to split. */
export function canPin() {
  if (pinning === undefined) {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
      pinning = availableParallelism() >= 2;
    } catch {
      pinning = false;
    }
  }
  return pinning;
}

/** Pin every thread of `pid` to `core` (no-op without taskset). */
export function pin(pid, core) {
  if (!canPin()) return;
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}

/** The driver child: fake upstreams and the load generator, on DRIVER_CORE. */
export async function startDriver() {
  const child = fork(path.join(BENCH_DIR, 'driver.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  pin(child.pid, DRIVER_CORE);
  let nextId = 1;
  const waiting = new Map();
  child.on('message', (msg) => {
    const entry = waiting.get(msg.id);
    if (!entry) return;
    waiting.delete(msg.id);
    if (msg.type === 'error') entry.reject(new Error(`driver: ${msg.message}`));
    else entry.resolve(msg);
  });
  child.on('exit', (code) => {
    for (const entry of waiting.values()) entry.reject(new Error(`driver exited (${code})`));
    waiting.clear();
  });
  const call = (msg) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      child.send({ ...msg, id });
    });
  const { ports } = await call({ type: 'start' });
  return {
    pid: child.pid,
    ports,
    /** Closed-loop load against `port`; resolves the loadgen summary plus CPU of `pid`. */
    load: async (opts) => (await call({ type: 'load', ...opts })).result,
    hold: async (opts) => (await call({ type: 'hold', ...opts })).result,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.send({ type: 'stop' });
      }),
  };
}

/**
 * Spawn a proxy on PROXY_CORE and wait until its stdout matches `ready`
 * (whose first group is the port).
 */
export function startProxy(name, args, ready, { env = process.env, cwd = ROOT } = {}) {
  const command = canPin() ? 'taskset' : process.execPath;
  const argv = canPin() ? ['-c', String(PROXY_CORE), process.execPath, ...args] : args;
  const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`${name} did not start within 20 s`)), 20_000);
    const fail = (err) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${stderr}`));
    };
    child.once('exit', (code) => fail(new Error(`${name} exited (${code}) before it was ready`)));
    child.stdout.on('data', (d) => {
      out += d.toString();
      const m = ready.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout.removeAllListeners('data');
      child.stdout.resume();
      resolve({
        name,
        pid: child.pid,
        port: Number(m[1]),
        stderr: () => stderr,
        stop: () => stopChild(child),
      });
    });
  });
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

/** The bare pass-through baseline (`client`: 'http' | 'undici'). */
export function startBare(client, nodeArgs = []) {
  return startProxy(
    `bare-${client}`,
    [...nodeArgs, path.join(BENCH_DIR, 'passthrough.js'), '--client', client],
    /listening (\d+)/,
  );
}

/**
 * `failproxy serve` on port 0 with LOG_LEVEL=info (the default, so logging
 * costs count), logging to `logDir`; `serveArgs` are added to its command line.
 */
export function startFailProxy({ name = 'failproxy', profilesDir, logDir, nodeArgs = [], serveArgs = [], logLevel = 'info' }) {
  return startProxy(
    name,
    [
      ...nodeArgs,
      path.join(ROOT, 'bin', 'failproxy.js'),
      'serve',
      '--profiles',
      profilesDir,
      '--port',
      '0',
      '--log-dir',
      logDir,
      ...serveArgs,
    ],
    /FailProxy listening on http:\/\/127\.0\.0\.1:(\d+)\/v1/,
    { env: { ...process.env, LOG_LEVEL: logLevel, NO_COLOR: '1' } },
  );
}

const endpoint = (name, port, extra = {}) => ({
  name,
  baseurl: `http://127.0.0.1:${port}/v1`,
  apikey: '',
  model: extra.model ?? 'bench-model',
  timeout: 30,
  ...(extra.stream !== undefined ? { stream: extra.stream } : {}),
  ...(extra.apikey !== undefined ? { apikey: extra.apikey } : {}),
});

/** A cooldown that never opens: every request walks the failing endpoint first. */
const NEVER_COOL = { failures: 1_000_000_000, seconds: 1 };

/**
 * One group per scenario (YAML is a superset of JSON, so the files are JSON).
 * The failing endpoints use distinct model names: health is keyed by
 * base URL + model + key, and the cooled group must not share state with the
 * failover group.
 */
export function writeProfiles(dir, ports) {
  mkdirSync(dir, { recursive: true });
  const groups = {
    ns: [endpoint('json', ports.json)],
    s20: [endpoint('sse20', ports.sse20)],
    s20slow: [endpoint('sse20slow', ports.sse20slow)],
    s100slow: [endpoint('sse100slow', ports.sse100slow)],
    failover: {
      endpoints: [endpoint('fails', ports.fail500, { model: 'failover-500' }), endpoint('json', ports.json)],
      cooldown: NEVER_COOL,
    },
    cooled: {
      endpoints: [endpoint('fails', ports.fail500, { model: 'cooled-500' }), endpoint('json', ports.json)],
      cooldown: { failures: 1, seconds: 600 },
    },
    refused: { endpoints: [endpoint('refused', ports.refused), endpoint('json', ports.json)], cooldown: NEVER_COOL },
    j2s: [endpoint('json', ports.json, { stream: false })],
    s2j: [endpoint('sse20', ports.sse20, { stream: true })],
    // The same upstream as `ns`, through a pool of three keys (round robin, sticky sessions on).
    pool3: [endpoint('json', ports.json, { apikey: ['bench-key-1', 'bench-key-2', 'bench-key-3'] })],
  };
  for (const [name, content] of Object.entries(groups)) {
    writeFileSync(path.join(dir, `${name}.yaml`), `${JSON.stringify(content, null, 2)}\n`);
  }
}

/** Sample VmRSS of `pid` every 100 ms; `stop()` returns { beforeKb, peakKb }. */
export function sampleRss(pid) {
  const beforeKb = rssKb(pid);
  let peakKb = beforeKb ?? 0;
  const timer = setInterval(() => {
    const kb = rssKb(pid);
    if (kb !== null && kb > peakKb) peakKb = kb;
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      const kb = rssKb(pid);
      if (kb !== null && kb > peakKb) peakKb = kb;
      return { beforeKb, peakKb };
    },
  };
}
