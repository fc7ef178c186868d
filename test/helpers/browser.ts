/**
 * A real, headless Debian `chromium` driven by playwright-core, for the tests
 * that only a browser can answer (CORS, what a page may read, the dashboard).
 * Never `playwright install`: the browser is the system's (`.ci/run` installs it).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's package; CHROMIUM_PATH points elsewhere on other systems. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Quiet and hermetic: no sandbox (CI runs as root), no GPU, no QUIC, and none
 * of the background traffic (updates, sync, field trials) that would reach the internet.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why the browser tests cannot run here, or null when they can. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM_PATH)
    ? null
    : `chromium not installed: no ${CHROMIUM_PATH} (Debian: apt-get install chromium, or set CHROMIUM_PATH); skipping the browser tests`;
}

/**
 * Options for `describe`/`it`: `{ skip: 'chromium not installed: ...' }` when
 * there is no browser, `{}` when there is.
 */
export function browserTestOptions(): { skip?: string } {
  const missing = chromiumMissing();
  return missing === null ? {} : { skip: missing };
}

export interface BrowserSession {
  context: BrowserContext;
  newPage(): Promise<Page>;
  /** Close the browser and remove its profile. */
  close(): Promise<void>;
}

/**
 * Launch chromium with a fresh profile in a temp directory (playwright refuses
 * `--user-data-dir` in `args`; a persistent context is how it takes one).
 * `extraArgs` come after the defaults, e.g. `--host-resolver-rules=MAP evil.test 127.0.0.1`.
 */
export async function launchBrowser(extraArgs: readonly string[] = []): Promise<BrowserSession> {
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'failproxy-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
      timeout: 60_000,
    });
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    context,
    newPage: () => context.newPage(),
    async close() {
      await context.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
