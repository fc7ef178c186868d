// Shared health (`serve --redis`) on the healthy path: `npm run bench:redis`
// (5 interleaved reps, ~1.5 min) or `npm run bench:redis -- --quick`.
// Options: --reps N  --duration SECONDS
//
// Two FailProxy processes on the proxy core, one with the in-memory health
// store (the default) and one pointed at a redis-server on the driver core,
// take turns under the same closed-loop load. The target: --redis reaches
// ≥ 0.95× the in-memory throughput. Redis's INFO commandstats, read around
// the measurements, shows what the healthy path asked of it (heartbeats only).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { request } from 'undici';
import { BENCH_DIR, DRIVER_CORE, canPin, pin, startDriver, startFailProxy, writeProfiles } from './harness.js';
import { requestBody } from './scenarios.js';

const TARGET = 0.95;
const SCENARIOS = [
  { key: 'ns-c16', title: 'non-stream c16', group: 'ns', upstream: 'json', stream: false, concurrency: 16 },
  { key: 's20-c16', title: 'stream 20 chunks c16', group: 's20', upstream: 'sse20', stream: true, concurrency: 16 },
];

const log = (line) => process.stderr.write(`${line}\n`);
const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

function parseArgs(argv) {
  const value = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  const quick = argv.includes('--quick');
  const options = quick
    ? { quick, reps: 3, warmupMs: 500, durationMs: 2000 }
    : { quick, reps: 5, warmupMs: 1000, durationMs: 4000 };
  if (value('--reps')) options.reps = Number(value('--reps'));
  if (value('--duration')) options.durationMs = Number(value('--duration')) * 1000;
  return options;
}

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startRedis() {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  pin(child.pid, DRIVER_CORE);
  await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10_000);
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${out}`)));
    child.stdout.on('data', (d) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.stdout.resume();
        resolve();
      }
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

async function commandStats(url) {
  const client = createClient({ url });
  await client.connect();
  try {
    const stats = {};
    for (const m of (await client.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
      stats[m[1]] = Number(m[2]);
    return stats;
  } finally {
    await client.disconnect();
  }
}

async function measure(driver, options, scenario, proxy) {
  const result = await driver.load({
    port: proxy.port,
    upstreamPort: driver.ports[scenario.upstream],
    body: requestBody(scenario),
    concurrency: scenario.concurrency,
    warmupMs: options.warmupMs,
    durationMs: options.durationMs,
    pid: proxy.pid,
  });
  return {
    ...result,
    cpuPerReqUs: result.proxyCpuUs !== null && result.completed > 0 ? result.proxyCpuUs / result.completed : null,
  };
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    log('skipped: redis-server is not on PATH (Debian: apt-get install redis-server)');
    return;
  }
  if (canPin()) pin(process.pid, DRIVER_CORE);
  else log('warning: taskset missing or fewer than 2 cores: processes are not pinned, figures are less meaningful');
  const startedAt = new Date();
  const tmp = mkdtempSync(path.join(tmpdir(), 'failproxy-bench-redis-'));
  const profiles = path.join(tmp, 'profiles');
  const redis = await startRedis();
  const driver = await startDriver();
  const proxies = {};
  try {
    writeProfiles(profiles, driver.ports);
    proxies.memory = await startFailProxy({ name: 'memory', profilesDir: profiles, logDir: path.join(tmp, 'logs-memory') });
    proxies.redis = await startFailProxy({
      name: 'redis',
      profilesDir: profiles,
      logDir: path.join(tmp, 'logs-redis'),
      serveArgs: ['--redis', redis.url],
    });
    const res = await request(`http://127.0.0.1:${proxies.redis.port}/status`);
    const store = (await res.body.json()).health_store;
    if (!store?.shared) throw new Error(`the --redis instance does not share its state: ${JSON.stringify(store)}`);
    log(`redis instance: ${JSON.stringify(store)}`);
    // Warm both up (JIT, connection pools) on every scenario before anything counts.
    for (const scenario of SCENARIOS)
      for (const proxy of Object.values(proxies))
        await measure(driver, { warmupMs: 0, durationMs: 1500 }, scenario, proxy);

    const statsBefore = await commandStats(redis.url);
    const reps = [];
    for (let rep = 0; rep < options.reps; rep++) {
      const results = {};
      for (const scenario of SCENARIOS) {
        results[scenario.key] = {};
        for (const who of rep % 2 === 0 ? ['memory', 'redis'] : ['redis', 'memory']) {
          const r = await measure(driver, options, scenario, proxies[who]);
          results[scenario.key][who] = r;
          const failed = r.failed > 0 ? `  FAILED ${r.failed} ${JSON.stringify(r.errors)}` : '';
          log(
            `[rep ${rep + 1}/${options.reps}] ${scenario.title.padEnd(22)} ${who.padEnd(6)} ${r.perSecond.toFixed(0).padStart(6)} req/s` +
              `  p50 ${r.p50Ms?.toFixed(2)} ms  cpu ${r.cpuPerReqUs?.toFixed(0)} µs/req${failed}`,
          );
        }
      }
      reps.push(results);
    }
    const statsAfter = await commandStats(redis.url);
    const redisCommands = Object.fromEntries(
      Object.keys(statsAfter)
        .map((cmd) => [cmd, statsAfter[cmd] - (statsBefore[cmd] ?? 0)])
        .filter(([cmd, n]) => n > 0 && cmd !== 'info'),
    );

    const summary = SCENARIOS.map((scenario) => {
      const ratios = reps.map((r) => r[scenario.key].redis.perSecond / r[scenario.key].memory.perSecond);
      const failed = reps.reduce((n, r) => n + r[scenario.key].redis.failed + r[scenario.key].memory.failed, 0);
      const ratio = median(ratios);
      // CPU per request moves less than throughput on a busy machine: a cross-check (memory ÷ redis, > 1 = redis cheaper).
      const cpuRatio = median(reps.map((r) => r[scenario.key].memory.cpuPerReqUs / r[scenario.key].redis.cpuPerReqUs));
      return {
        key: scenario.key,
        title: scenario.title,
        memoryRps: median(reps.map((r) => r[scenario.key].memory.perSecond)),
        redisRps: median(reps.map((r) => r[scenario.key].redis.perSecond)),
        memoryCpuUs: median(reps.map((r) => r[scenario.key].memory.cpuPerReqUs)),
        redisCpuUs: median(reps.map((r) => r[scenario.key].redis.cpuPerReqUs)),
        ratio,
        ratios,
        cpuRatio,
        failed,
        met: ratio !== null && ratio >= TARGET && failed === 0,
      };
    });

    const out = [
      '',
      `Shared health on the healthy path: --redis vs in-memory (${options.reps} reps × ${options.durationMs / 1000} s, medians)`,
      '',
      `  ${'scenario'.padEnd(22)} ${'memory req/s'.padStart(12)} ${'redis req/s'.padStart(12)} ${'µs/req m→r'.padStart(12)} ${'× memory'.padStart(9)} ${'cpu ×'.padStart(6)}  target`,
    ];
    for (const s of summary) {
      out.push(
        `  ${s.title.padEnd(22)} ${s.memoryRps.toFixed(0).padStart(12)} ${s.redisRps.toFixed(0).padStart(12)} ` +
          `${`${s.memoryCpuUs?.toFixed(0)}→${s.redisCpuUs?.toFixed(0)}`.padStart(12)} ${s.ratio.toFixed(3).padStart(9)} ${s.cpuRatio?.toFixed(3).padStart(6)}  ` +
          `≥ ${TARGET} ${s.met ? '✓' : '✗'}${s.failed ? ` (${s.failed} failed requests)` : ''}`,
      );
    }
    out.push(
      '',
      '  × memory: median of the per-rep throughput ratios; cpu ×: in-memory CPU/request ÷ --redis CPU/request.',
      `  Redis commands during the measurements (heartbeats only expected): ${JSON.stringify(redisCommands)}`,
    );
    process.stdout.write(`${out.join('\n')}\n`);

    const resultsDir = path.join(BENCH_DIR, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `redis-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    const report = {
      startedAt: startedAt.toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? null, node: process.version, pinned: canPin() },
      options,
      summary,
      redisCommands,
      reps,
    };
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\nresults: ${path.relative(process.cwd(), file)}\n`);
  } finally {
    await Promise.all(Object.values(proxies).map((p) => p.stop()));
    await driver.stop();
    await redis.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
