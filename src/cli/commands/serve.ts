/**
 * `failproxy serve` (SPEC §4, §5): the proxy server on the shipped profiles.
 * Validates everything before binding the port, prints where it listens and
 * what it serves, reloads profiles on change, and shuts down gracefully.
 */
import type { Server } from 'node:http';
import path from 'node:path';
import { Command } from 'commander';
import { FailoverEngine } from '../../core/engine.js';
import { ConfigError } from '../../core/errors.js';
import { HealthTracker } from '../../core/health.js';
import type { EngineObserver } from '../../core/observe.js';
import { redactSecrets, registerSecrets } from '../../core/redact.js';
import type { Group } from '../../core/types.js';
import { formatProblem, watchProfiles, type ProfileUpdate } from '../../config/profiles.js';
import { LogObserver } from '../../logging/observer.js';
import { priceLookup } from '../../logging/usage.js';
import { colorsFor, formatChain } from '../../logging/pretty.js';
import type { JsonlLogger } from '../../logging/writer.js';
import type { Refusal } from '../../server/access.js';
import { parseModelMapping, type ModelMapping } from '../../protocols/model-map.js';
import { createProxyServer } from '../../server/app.js';
import { createOriginPolicy, isLoopbackHost } from '../../server/origin-policy.js';
import { CaptureObserver } from '../../server/capture.js';
import { capYoungGeneration } from '../../server/young-generation.js';
import { GroupRegistry } from '../../server/registry.js';
import { createObservability } from '../../server/observability.js';
import { createLogger, describeProblems, describeStartupProblems, loadGroupsOrFail, parseIntOption, withCommonOptions } from '../common.js';

interface RawServeOptions {
  host: string;
  port: string;
  apiKey: string[];
  corsOrigin: string[];
  allowedHost: string[];
  maxBody: string;
  demo?: boolean;
  redis?: string;
  redisPrefix: string;
  modelMap: string[];
  capture?: string;
  captureAll?: boolean;
  captureRedactContent?: boolean;
  profiles?: string;
  logDir?: string;
}

interface ServeOptions {
  host: string;
  port: number;
  apiKeys: string[];
  /** Origins allowed besides loopback ones; `*` = any. */
  corsOrigins: string[];
  /** Host names accepted besides loopback ones while bound to loopback. */
  allowedHosts: string[];
  maxBody: number;
  demo: boolean;
  /** Share endpoint health through this Redis; undefined = in-memory, private to this process. */
  redis: URL | undefined;
  redisPrefix: string;
  modelMap: ModelMapping[];
  /** Request capture (failed and interrupted requests, or all); undefined = off. */
  capture: { dir: string; all: boolean; redactContent: boolean } | undefined;
  profiles: string | undefined;
  logDir: string | undefined;
}

const collect = (value: string, previous: string[]): string[] => previous.concat(value);

export function serveCommand(): Command {
  return withCommonOptions(
    new Command('serve')
      .description('run the OpenAI-compatible failover proxy')
      .option('--host <host>', 'address to bind', '127.0.0.1')
      .option('--port <port>', 'port to listen on', '8000')
      .option('--api-key <key>', 'require this client key (repeatable; also $FAILPROXY_API_KEYS)', collect, [])
      .option('--cors-origin <origin>', "also let web pages from this origin call the proxy; '*' = any (repeatable; also $FAILPROXY_CORS_ORIGINS)", collect, [])
      .option('--allowed-host <host>', 'also answer to this Host name while bound to loopback, e.g. behind a reverse proxy (repeatable; also $FAILPROXY_ALLOWED_HOSTS)', collect, [])
      .option('--max-body <bytes>', 'largest request body accepted', String(10 * 1024 * 1024))
      .option('--model-map <pattern=group>', 'serve client model names (e.g. claude-sonnet-*) from a group on /v1/messages and /v1/responses (repeatable)', collect, [])
      .option('--demo', 'add a built-in "demo" group whose upstreams fail on purpose')
      .option('--redis <url>', 'share endpoint health with other instances through this Redis (also $FAILPROXY_REDIS_URL)')
      .option('--redis-prefix <prefix>', 'namespace for the Redis keys (also $FAILPROXY_REDIS_PREFIX)', process.env.FAILPROXY_REDIS_PREFIX ?? 'failproxy:')
      .option('--capture <dir>', 'save the body of each failed or interrupted request here, redacted, for `failproxy replay`')
      .option('--capture-all', 'with --capture: save answered requests too')
      .option('--capture-redact-content', 'with --capture: leave message text out (only its length is kept)'),
  ).action(async (raw: RawServeOptions) => serve(resolveOptions(raw)));
}

function resolveOptions(raw: RawServeOptions): ServeOptions {
  const fromEnv = listFromEnv('FAILPROXY_API_KEYS');
  const port = parseIntOption('--port', raw.port, 0);
  if (port === undefined || port > 65535) throw new ConfigError(`--port expects 0-65535, got "${raw.port}"`);
  return {
    host: raw.host,
    port,
    apiKeys: [...raw.apiKey, ...fromEnv],
    corsOrigins: [...raw.corsOrigin, ...listFromEnv('FAILPROXY_CORS_ORIGINS')],
    allowedHosts: [...raw.allowedHost, ...listFromEnv('FAILPROXY_ALLOWED_HOSTS')],
    maxBody: parseIntOption('--max-body', raw.maxBody, 1) ?? 10 * 1024 * 1024,
    demo: raw.demo === true,
    redis: parseRedisUrl(raw.redis ?? process.env.FAILPROXY_REDIS_URL),
    redisPrefix: raw.redisPrefix,
    modelMap: raw.modelMap.map((text) => {
      const mapping = parseModelMapping(text);
      if (!mapping) throw new ConfigError(`--model-map expects PATTERN=GROUP (e.g. 'claude-sonnet-*=think-stream'), got "${text}"`);
      return mapping;
    }),
    capture: raw.capture !== undefined ? { dir: path.resolve(raw.capture), all: raw.captureAll === true, redactContent: raw.captureRedactContent === true } : undefined,
    profiles: raw.profiles,
    logDir: raw.logDir,
  };
}

function listFromEnv(name: string): string[] {
  return (process.env[name] ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
}

async function serve(options: ServeOptions): Promise<void> {
  // Bad origins or host names are usage errors, found before anything starts.
  const policy = createOriginPolicy({ corsOrigins: options.corsOrigins, allowedHosts: options.allowedHosts });
  const err = (line: string): void => void process.stderr.write(`${line}\n`);
  const loaded = await loadGroupsOrFail(options.profiles, options.demo);
  for (const line of describeStartupProblems(loaded.groups.values(), loaded.problems)) err(line);

  const registry = new GroupRegistry(loaded.groups.values());
  const demo = options.demo ? await (await import('../../demo/upstreams.js')).startDemoUpstreams() : undefined;
  if (demo) registry.set(demo.group);
  if (registry.names().length === 0) throw new ConfigError(`no usable groups in ${loaded.dir}`);
  registerSecrets(registry.all().flatMap((g) => g.endpoints.map((e) => e.apikey)));
  registerSecrets(options.apiKeys);

  let loggerFailed = false;
  const logger = createLogger(options.logDir, (e) => {
    if (!loggerFailed) err(`warning: cannot write logs: ${e.message}`);
    loggerFailed = true;
  });
  const health = options.redis ? await sharedHealth(options.redis, options.redisPrefix, logger, err) : new HealthTracker();
  const engine = new FailoverEngine({ health });
  const observability = createObservability(engine.health, registry);
  const stderrColors = colorsFor('stderr');
  const observers: EngineObserver[] = [
    new LogObserver(logger, {
      priceOf: priceLookup((name) => registry.get(name)),
      ...(process.stderr.isTTY ? { onRequest: (request, attempts) => err(formatChain(request, attempts, stderrColors)) } : {}),
    }),
    ...observability.observers,
  ];
  if (options.capture) {
    let warned = false;
    let capture: CaptureObserver;
    try {
      capture = new CaptureObserver({
        ...options.capture,
        onError: (e) => {
          if (!warned) err(`warning: cannot write request captures: ${e.message}`);
          warned = true;
        },
      });
    } catch (e) {
      throw new ConfigError(`--capture ${options.capture.dir}: ${(e as Error).message}`);
    }
    observers.push(capture);
    err(`capturing ${options.capture.all ? 'every request' : 'failed and interrupted requests'}${options.capture.redactContent ? ' (message text redacted)' : ''} in ${options.capture.dir}`);
  }
  const proxy = createProxyServer({
    engine,
    groups: registry,
    apiKeys: options.apiKeys,
    corsOrigins: options.corsOrigins,
    allowedHosts: options.allowedHosts,
    onRefused: reportRefusals(logger, err),
    maxBody: options.maxBody,
    modelMap: options.modelMap,
    observers,
    extraRoutes: observability.routes,
    publicRoutes: observability.publicRoutes,
  });

  // Listening for the signal before the banner: a SIGTERM right after start still shuts down gracefully.
  const stopSignal = waitForStopSignal();
  await listen(proxy.server, options.port, options.host);
  const address = proxy.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${hostForUrl}:${port}/v1`;
  printBanner(url, registry.all());
  if (options.apiKeys.length === 0 && !isLoopbackHost(options.host)) {
    err(`warning: listening on ${options.host} without --api-key: anyone who can reach this port can use your upstream keys`);
  }
  if (options.apiKeys.length === 0 && policy.anyOrigin) {
    err(`warning: --cors-origin '*' without --api-key: any web page open in your browser can use your upstream keys`);
  }
  logger.log('info', { event: 'server', action: 'start', url, message: `groups: ${registry.names().join(', ')}` });
  for (const group of registry.all()) {
    logger.log('info', { event: 'config', action: 'loaded', file: group.source, group: group.name, message: `${group.endpoints.length} usable endpoint(s)` });
  }

  const uncapYoungGeneration = capYoungGeneration();
  const watcher = watchProfiles(loaded.dir, process.env, (update) => applyUpdate(update, registry, logger, err), {
    onError: (e) => err(`warning: profile watching stopped: ${e.message}`),
  });

  const signal = await stopSignal;
  observability.close();
  uncapYoungGeneration();
  err(`\n${signal}: finishing ${proxy.inFlight()} in-flight request(s) (up to 30 s)...`);
  watcher.close();
  await proxy.shutdown(30_000);
  logger.log('info', { event: 'server', action: 'stop', url, message: signal });
  await health.close();
  await Promise.all([engine.close(), logger.close(), demo?.close()]);
}

function parseRedisUrl(value: string | undefined): URL | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    // Not echoed: it may carry a password.
    throw new ConfigError('--redis expects a URL like redis://[user:password@]host:6379[/db]');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError(`--redis expects a redis:// or rediss:// URL, got "${url.protocol}"`);
  }
  if (url.password) registerSecrets([decodeURIComponent(url.password)]);
  return url;
}

/**
 * A tracker whose state every instance on the same Redis shares. Redis being
 * away never stops the proxy: the store falls back to the local view, and this
 * says so once when it goes and once when it is back.
 */
async function sharedHealth(url: URL, prefix: string, logger: JsonlLogger, err: (line: string) => void): Promise<HealthTracker> {
  const { RedisHealthStore } = await import('../../server/health-redis.js');
  const where = `${url.protocol}//${url.host}${url.pathname.length > 1 ? url.pathname : ''}`;
  const store = new RedisHealthStore({
    url: url.href,
    prefix,
    onConnectionChange: (event, detail) => {
      if (event === 'unavailable') {
        const message = `redis unavailable at ${where} (${redactSecrets(detail)}): endpoint health stays local until it is back`;
        err(`warning: ${message}`);
        logger.log('warn', { event: 'server', action: 'redis_unavailable', message });
      } else {
        const message = `redis back at ${where}: endpoint health is shared again`;
        err(message);
        logger.log('info', { event: 'server', action: 'redis_back', message });
      }
    },
  });
  const health = new HealthTracker(Date.now, store);
  if (await store.start(1000)) err(`endpoint health shared through ${where} (prefix "${prefix}")`);
  return health;
}

function applyUpdate(update: ProfileUpdate, registry: GroupRegistry, logger: JsonlLogger, err: (line: string) => void): void {
  switch (update.kind) {
    case 'reloaded':
      registry.set(update.group);
      registerSecrets(update.group.endpoints.map((e) => e.apikey));
      for (const line of describeProblems(update.problems)) err(line);
      err(`reloaded ${update.group.name} (${update.group.endpoints.length} usable endpoint(s))`);
      logger.log('info', {
        event: 'config',
        action: 'reloaded',
        file: update.group.source,
        group: update.group.name,
        message: `${update.group.endpoints.length} usable endpoint(s)`,
      });
      return;
    case 'removed':
      registry.delete(update.name);
      err(`removed group ${update.name} (${update.file} is gone)`);
      logger.log('info', { event: 'config', action: 'reloaded', file: update.file, group: update.name, message: 'group removed' });
      return;
    case 'error': {
      const why = update.problems.filter((p) => p.severity === 'error').map(formatProblem).join('; ');
      const kept = registry.get(update.name) ? 'keeping the last good version' : 'group not loaded';
      err(`error: ${update.file}: ${why} (${kept})`);
      logger.log('error', { event: 'config', action: 'error', file: update.file, group: update.name, message: `${why} (${kept})` });
      return;
    }
  }
}

function printBanner(url: string, groups: Group[]): void {
  const out: string[] = [`FailProxy listening on ${url}`, `Dashboard: ${url.replace(/\/v1$/, '/ui')}`, ''];
  const width = Math.max(...groups.map((g) => g.name.length), 5);
  for (const group of groups) {
    const total = group.endpoints.length + group.skipped.length;
    out.push(`  ${group.name.padEnd(width)}  ${group.endpoints.length}/${total} endpoints usable`);
  }
  // Skipped endpoints were already named, with their variable, by the profile warnings.
  process.stdout.write(`${out.join('\n')}\n\n`);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(new ConfigError(e.code === 'EADDRINUSE' ? `port ${port} on ${host} is already in use` : `cannot listen on ${host}:${port}: ${e.message}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function waitForStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/**
 * Say once per origin or host name why it was refused and which flag would
 * allow it: a web UI that stops working should not leave the user guessing.
 */
function reportRefusals(logger: JsonlLogger, err: (line: string) => void): (refusal: Refusal) => void {
  const told = new Set<string>();
  return ({ reason, value, method, path }) => {
    const key = `${reason} ${value}`;
    if (told.has(key) || told.size >= 100) return;
    told.add(key);
    const shown = JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
    const flag = reason === 'origin' ? '--cors-origin' : '--allowed-host';
    const message = `refused ${method} ${path} from ${reason === 'origin' ? 'Origin' : 'Host'} ${shown} (403); ${flag} allows it if you trust it`;
    err(`warning: ${message}`);
    logger.log('warn', { event: 'server', action: 'refused', message });
  };
}
