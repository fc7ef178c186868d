/**
 * The dashboard's page (`GET /ui`): static files shipped in the package's
 * `assets/ui/` and served as they are — no CDN, no build step, nothing fetched
 * from elsewhere, so it works offline. The page holds no data; it asks
 * `/ui/events` for it with the user's key, so these routes need none.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError, type Headers } from './http.js';

/** `src/server` and `dist/server` both sit two levels below the package root. */
const ASSETS = new URL('../../assets/ui/', import.meta.url);

const FILES: Record<string, { file: string; type: string }> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** Everything the page may load comes from this server; the CSP makes a stray CDN link fail loudly. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

type Route = (req: IncomingMessage, res: ServerResponse, headers: Headers) => Promise<void>;

/** GET routes for the page's files, read once and kept. */
export function uiAssetRoutes(): Record<string, Route> {
  const cache = new Map<string, Buffer>();
  const routes: Record<string, Route> = {};
  for (const [path, { file, type }] of Object.entries(FILES)) {
    routes[path] = async (_req, res, headers) => {
      let body = cache.get(file);
      if (body === undefined) {
        try {
          body = await readFile(new URL(file, ASSETS));
        } catch (err) {
          sendError(
            res,
            500,
            `dashboard asset ${file} is missing from this install: ${(err as Error).message}`,
            'server_error',
            'asset_missing',
            null,
            headers,
          );
          return;
        }
        cache.set(file, body);
      }
      if (res.headersSent || res.destroyed) return;
      res.writeHead(200, { ...headers, ...PAGE_HEADERS, 'content-type': type, 'content-length': body.length });
      res.end(body);
    };
  }
  return routes;
}
