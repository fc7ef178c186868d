/** Running the built `failproxy ask` against fake upstreams: profiles on disk, a child process. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'failproxy.js');
export const BUILT = existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'));
export const SKIP_UNBUILT = BUILT ? false : 'dist/cli/main.js is missing (run npm run build)';

export interface ProfileEndpoint {
  name: string;
  baseurl: string;
  timeout?: number;
  stream?: boolean;
}

export interface Workspace {
  profiles: string;
  logs: string;
  /** `--profiles DIR --log-dir DIR` */
  args: string[];
  logLines(): Promise<Record<string, unknown>[]>;
  cleanup(): Promise<void>;
}

/** A temp dir with one profile file per group (the original bare-array format). */
export async function workspace(groups: Record<string, ProfileEndpoint[]>): Promise<Workspace> {
  const root = await mkdtemp(path.join(tmpdir(), 'failproxy-ask-'));
  const profiles = path.join(root, 'profiles');
  const logs = path.join(root, 'logs');
  await mkdir(profiles);
  for (const [name, endpoints] of Object.entries(groups)) {
    const body = endpoints.map((e) => ({
      name: e.name,
      baseurl: e.baseurl,
      apikey: '',
      model: `${e.name}-model`,
      timeout: e.timeout ?? 10,
      ...(e.stream !== undefined ? { stream: e.stream } : {}),
    }));
    await writeFile(path.join(profiles, `${name}.json`), JSON.stringify(body, null, 2));
  }
  return {
    profiles,
    logs,
    args: ['--profiles', profiles, '--log-dir', logs],
    async logLines() {
      const files = existsSync(logs) ? (await readdir(logs)).filter((f) => f.endsWith('.jsonl')) : [];
      const lines: Record<string, unknown>[] = [];
      for (const f of files) {
        const text = await readFile(path.join(logs, f), 'utf8');
        for (const line of text.split('\n'))
          if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      return lines;
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** The environment for a child: no colours, none of the caller's failproxy settings. */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  delete env.FORCE_COLOR;
  for (const key of ['FAILPROXY_GROUP', 'FAILPROXY_PROFILES', 'FAILPROXY_LOG_DIR', 'LOG_LEVEL']) {
    if (!(key in extra)) delete env[key];
  }
  return env;
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** Text written to stdin, then closed. Default: stdin is /dev/null. */
  stdin?: string;
  /** Keep stdin an open pipe that nobody writes to or closes. */
  silentOpenStdin?: boolean;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Send SIGINT (as Ctrl-C would) once stdout satisfies this. */
  interruptWhen?: (stdout: string) => boolean;
}

/** `node bin/failproxy.js ask ...args` with stdout and stderr captured (so stdout is not a TTY). */
export function runAsk(args: string[], options: RunOptions = {}): Promise<CliRun> {
  const started = Date.now();
  const useStdin = options.stdin !== undefined || options.silentOpenStdin === true;
  const child = spawn(process.execPath, [BIN, 'ask', ...args], {
    cwd: ROOT,
    env: childEnv(options.env),
    stdio: [useStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  if (child.stdout === null || child.stderr === null) throw new Error('spawn gave no stdout/stderr pipes');
  let stdout = '';
  let stderr = '';
  let interrupted = false;
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    if (!interrupted && options.interruptWhen?.(stdout)) {
      interrupted = true;
      child.kill('SIGINT');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ask did not finish in time\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      child.stdin?.destroy();
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Poll until `check` is true (or fail after `timeoutMs`). */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
