/** The real proxy server, in-process on 127.0.0.1:0, for HTTP-level tests. */
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FailoverEngine } from '../../src/core/engine.js';
import type { Group } from '../../src/core/types.js';
import { LogObserver } from '../../src/logging/observer.js';
import { JsonlLogger } from '../../src/logging/writer.js';
import { createProxyServer, type ProxyServer } from '../../src/server/app.js';
import { GroupRegistry } from '../../src/server/registry.js';

export interface RunningProxy {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `http://127.0.0.1:PORT/v1` */
  baseURL: string;
  logDir: string;
  proxy: ProxyServer;
  engine: FailoverEngine;
  registry: GroupRegistry;
  logger: JsonlLogger;
  close(): Promise<void>;
}

export async function startProxy(
  groups: Group[],
  options: {
    apiKeys?: string[];
    maxBody?: number;
    corsOrigins?: string[];
    allowedHosts?: string[];
    /** Address to bind; default 127.0.0.1 (`origin` always uses 127.0.0.1). */
    host?: string;
    logLevel?: 'debug' | 'info';
    modelMap?: Array<{ pattern: string; group: string }>;
  } = {},
): Promise<RunningProxy> {
  const logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-logs-'));
  const logger = new JsonlLogger({ dir: logDir, level: options.logLevel ?? 'info' });
  const engine = new FailoverEngine();
  const registry = new GroupRegistry(groups);
  const proxy = createProxyServer({
    engine,
    groups: registry,
    observers: [new LogObserver(logger)],
    ...(options.apiKeys ? { apiKeys: options.apiKeys } : {}),
    ...(options.maxBody ? { maxBody: options.maxBody } : {}),
    ...(options.corsOrigins ? { corsOrigins: options.corsOrigins } : {}),
    ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}),
    ...(options.modelMap ? { modelMap: options.modelMap } : {}),
  });
  await new Promise<void>((resolve) => proxy.server.listen(0, options.host ?? '127.0.0.1', resolve));
  const { port } = proxy.server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    baseURL: `${origin}/v1`,
    logDir,
    proxy,
    engine,
    registry,
    logger,
    async close() {
      await proxy.shutdown(1000);
      await engine.close();
      await logger.close();
    },
  };
}

export async function readLogLines(logger: JsonlLogger, dir: string): Promise<Array<Record<string, unknown>>> {
  await logger.close();
  const { readdir, readFile } = await import('node:fs/promises');
  const lines: Array<Record<string, unknown>> = [];
  for (const file of await readdir(dir)) {
    const text = await readFile(path.join(dir, file), 'utf8');
    for (const line of text.split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
  }
  return lines;
}
