// Reading a process's CPU time and resident memory from /proc (Linux only).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond;

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat. */
export function clockTicksPerSecond() {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** utime + stime of `pid` in microseconds, or null when it cannot be read. */
export function cpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1e6) / clockTicksPerSecond();
  } catch {
    return null;
  }
}

/** VmRSS of `pid` in kB, or null. */
export function rssKb(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * CPU time all cores spent in processes since boot (user+nice+system, plus
 * steal: time the hypervisor gave to someone else), in microseconds. Interrupt
 * and softirq time is left out: on loopback it is mostly our own traffic.
 */
export function machineBusyMicros() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const [user, nice, system, , , , , steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return ((user + nice + system + (steal || 0)) * 1e6) / clockTicksPerSecond();
  } catch {
    return null;
  }
}
