// The benchmark's other side, run as a child process pinned to the core the
// proxies do not use: the fake upstreams plus the load generator. Driven by
// IPC messages from run.js:
//   { type: 'start' }                          -> { type: 'ready', ports }
//   { id, type: 'load', pid, ...closedLoop }   -> { id, type: 'result', result }
//   { id, type: 'hold', pid, ...holdOpen }     -> { id, type: 'result', result }
//   { type: 'stop' }
// `pid` is the proxy under test: its CPU time is read at the window's edges.
import { closedLoop, holdOpen } from './loadgen.js';
import { cpuMicros, machineBusyMicros } from './procstat.js';
import { startUpstreams } from './upstream.js';

let upstreams;

function windowProbe(pid) {
  // windowMonoUs: the window on CLOCK_MONOTONIC (µs), the clock V8 stamps .cpuprofile samples with.
  const probe = { proxyCpuUs: null, driverCpuUs: null, machineCpuUs: null, windowMonoUs: [0, 0] };
  const monoUs = () => Number(process.hrtime.bigint() / 1000n);
  let proxy0 = 0;
  let self0 = null;
  let machine0 = null;
  probe.onWindow = (edge) => {
    if (edge === 'start') {
      probe.windowMonoUs[0] = monoUs();
      proxy0 = cpuMicros(pid);
      self0 = process.cpuUsage();
      machine0 = machineBusyMicros();
    } else {
      const proxy1 = cpuMicros(pid);
      const self = process.cpuUsage(self0);
      const machine1 = machineBusyMicros();
      probe.windowMonoUs[1] = monoUs();
      probe.proxyCpuUs = proxy0 !== null && proxy1 !== null ? proxy1 - proxy0 : null;
      probe.driverCpuUs = self.user + self.system;
      probe.machineCpuUs = machine0 !== null && machine1 !== null ? machine1 - machine0 : null;
    }
  };
  return probe;
}

async function handle(msg) {
  switch (msg.type) {
    case 'start':
      upstreams = await startUpstreams();
      return { type: 'ready', ports: upstreams.ports };
    case 'load':
    case 'hold': {
      const probe = windowProbe(msg.pid);
      const run = msg.type === 'load' ? closedLoop : holdOpen;
      const result = await run({ ...msg, onWindow: probe.onWindow });
      const { proxyCpuUs, driverCpuUs, machineCpuUs, windowMonoUs } = probe;
      return { type: 'result', result: { ...result, proxyCpuUs, driverCpuUs, machineCpuUs, windowMonoUs } };
    }
    case 'stop':
      await upstreams?.close();
      process.exit(0);
      return undefined;
    default:
      throw new Error(`unknown message ${msg.type}`);
  }
}

process.on('message', (msg) => {
  handle(msg).then(
    (reply) => reply && process.send({ id: msg.id, ...reply }),
    (err) => process.send({ id: msg.id, type: 'error', message: err?.stack ?? String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
