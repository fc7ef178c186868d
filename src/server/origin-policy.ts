/**
 * Which web pages may use the proxy, and under which host names it may be
 * reached. FailProxy spends the user's upstream keys, so a page in the user's
 * browser must not be able to call it unless the page is on this machine or
 * its origin was allowed by name (`--cors-origin`); and a DNS-rebinding page,
 * which reaches 127.0.0.1 under its own host name, must be told apart by the
 * `Host` header (`--allowed-host`). Pure: no I/O, so every case is a unit test.
 */
import { UsageError } from '../core/errors.js';

export interface OriginPolicyOptions {
  /** Origins allowed besides loopback ones; `*` allows any origin. */
  corsOrigins?: readonly string[];
  /** Host names allowed besides loopback ones when the Host check is on; `*` allows any. */
  allowedHosts?: readonly string[];
}

/** What to do with one request. */
export type OriginVerdict =
  /** Serve it; `allowOrigin` is the `Access-Control-Allow-Origin` value, null when there is none to send. */
  | { ok: true; allowOrigin: string | null }
  /** Refuse it (403) before anything else happens. */
  | { ok: false; reason: 'origin' | 'host'; message: string };

export interface OriginPolicy {
  /**
   * Judge a request by its `Origin` and `Host` headers. `checkHost` is true
   * when the server is bound to a loopback address.
   */
  check(origin: string | undefined, host: string | undefined, checkHost: boolean): OriginVerdict;
  /** True when any origin is allowed (`--cors-origin '*'`). */
  readonly anyOrigin: boolean;
}

// What a browser sends: scheme, host, optional port, nothing else. Checked
// before the URL parser, which would happily decode `%6cocalhost` or read
// `evil@127.0.0.1` as a loopback host.
const HTTP_ORIGIN = /^https?:\/\/(?:\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::\d{1,5})?$/i;
const OTHER_ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^\s/?#]+$/i;
const HOST_HEADER = /^(?:\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::\d{0,5})?$/i;
const MAX_ECHO = 200;

/**
 * True for names that can only mean this machine: `localhost`, 127.0.0.0/8,
 * `::1` (with or without brackets) and IPv4-mapped loopback. Expects a
 * normalized host name (see {@link normalizeHostname}) or a bind address.
 */
export function isLoopbackHost(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost') return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)) return true;
  const bare = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  return bare === '::1' || /^::ffff:(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|7f[0-9a-f]{2}:[0-9a-f]{1,4})$/.test(bare);
}

/**
 * The host name of a `Host` header or `--allowed-host` value, lowercased, its
 * port and one trailing dot dropped, IP literals in their canonical form
 * (`127.1` → `127.0.0.1`, `[0:0::1]` → `[::1]`); null when it is not a host.
 */
export function normalizeHostname(value: string): string | null {
  const trimmed = value.trim();
  if (!HOST_HEADER.test(trimmed)) return null;
  let hostname: string;
  try {
    hostname = new URL(`http://${trimmed}`).hostname;
  } catch {
    return null;
  }
  return hostname.endsWith('.') && hostname.length > 1 ? hostname.slice(0, -1) : hostname;
}

/**
 * An origin as browsers serialize it (`https://app.example`, default port
 * dropped, host lowercased); a trailing `/` is tolerated. Non-HTTP schemes
 * (`chrome-extension://id`) are compared as lowercase text. Null when the
 * value is not an origin (a path, `null`, a list).
 */
export function normalizeOrigin(value: string): string | null {
  const trimmed = value.trim().replace(/\/$/, '');
  if (HTTP_ORIGIN.test(trimmed)) {
    try {
      return new URL(trimmed).origin;
    } catch {
      return null;
    }
  }
  if (/^https?:/i.test(trimmed) || !OTHER_ORIGIN.test(trimmed)) return null;
  return trimmed.toLowerCase();
}

function isLoopbackOrigin(origin: string): boolean {
  if (!/^https?:\/\//.test(origin)) return false;
  return isLoopbackHost(new URL(origin).hostname);
}

/** Validate the allow-lists once (exit 2 on a bad value) and return the judge. */
export function createOriginPolicy(options: OriginPolicyOptions = {}): OriginPolicy {
  const corsOrigins = options.corsOrigins ?? [];
  if (corsOrigins.some((value) => value.trim().toLowerCase() === 'null')) {
    // Sandboxed iframes and file:// pages of any site send `null`: allowing it means allowing everyone.
    throw new UsageError(`--cors-origin null would let any sandboxed page in; pass '*' if that is really meant`);
  }
  const { any: anyOrigin, names: origins } = readAllowList(
    corsOrigins,
    normalizeOrigin,
    '--cors-origin expects an origin like https://app.example or http://localhost:3000 (no path)',
  );
  const { any: anyHost, names: hosts } = readAllowList(
    options.allowedHosts ?? [],
    normalizeHostname,
    '--allowed-host expects a host name like proxy.example or proxy.example:8000',
  );

  // A server sees the same few Host and Origin values over and over; parsing
  // them costs microseconds a request, remembering the answer almost nothing.
  const hostAllowed = memo((host: string) => {
    const name = normalizeHostname(host);
    return name !== null && (isLoopbackHost(name) || hosts.has(name));
  });
  const originAllowed = memo((origin: string) => {
    const normalized = normalizeOrigin(origin);
    return normalized !== null && (isLoopbackOrigin(normalized) || origins.has(normalized));
  });

  return {
    anyOrigin,
    check(origin, host, checkHost) {
      if (checkHost && !anyHost && host !== undefined) {
        // No Host at all is HTTP/1.0 from a program; browsers always send one.
        if (!hostAllowed(host)) {
          return {
            ok: false,
            reason: 'host',
            message:
              `Host ${quote(host)} is not allowed: FailProxy listens on a loopback address and answers only to localhost, ` +
              `127.0.0.1 and [::1] (a web page reaching it under another name is a DNS-rebinding attack). ` +
              `Start it with --allowed-host NAME to accept another name.`,
          };
        }
      }
      if (origin === undefined) return { ok: true, allowOrigin: anyOrigin ? '*' : null };
      if (anyOrigin) return { ok: true, allowOrigin: '*' };
      if (originAllowed(origin)) return { ok: true, allowOrigin: origin };
      return {
        ok: false,
        reason: 'origin',
        message:
          `Origin ${quote(origin)} is not allowed: FailProxy answers web pages only from this machine ` +
          `(localhost, 127.0.0.1, [::1]) unless started with --cors-origin ORIGIN for that page.`,
      };
    },
  };
}

/** `*` or normalized names; a value that does not normalize is a usage error. */
function readAllowList(
  values: readonly string[],
  normalize: (value: string) => string | null,
  expects: string,
): { any: boolean; names: Set<string> } {
  const names = new Set<string>();
  let any = false;
  for (const value of values) {
    const name = value.trim() === '*' ? '*' : normalize(value);
    if (name === null) throw new UsageError(`${expects}, got "${value}"`);
    if (name === '*') any = true;
    else names.add(name);
  }
  return { any, names };
}

/** Remember up to 256 answers; a flood of distinct values only ever costs a clear. */
function memo(judge: (value: string) => boolean): (value: string) => boolean {
  const known = new Map<string, boolean>();
  return (value) => {
    let answer = known.get(value);
    if (answer === undefined) {
      answer = judge(value);
      if (known.size >= 256) known.clear();
      known.set(value, answer);
    }
    return answer;
  };
}

function quote(value: string): string {
  const shown = value.length > MAX_ECHO ? `${value.slice(0, MAX_ECHO)}…` : value;
  return JSON.stringify(shown);
}
