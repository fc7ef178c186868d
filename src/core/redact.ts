/**
 * Keeps API keys out of everything a person or a client can read: upstream
 * error messages often echo the key they were given ("Incorrect API key
 * provided: sk-or-v1-..."), so every message passes through here before it is
 * logged, returned or shown.
 */

const known = new Set<string>();

/** Shapes of provider keys and bearer tokens, redacted even when not configured here. */
const KEY_SHAPES =
  /\b(?:sk-[A-Za-z0-9_-]{8,}|cpk_[A-Za-z0-9._-]{8,}|(?:Bearer|bearer)\s+[A-Za-z0-9._~+/=-]{8,})/g;

export const REDACTED = '[REDACTED]';

/** Remember configured keys so later messages that echo them are cleaned. */
export function registerSecrets(secrets: Iterable<string>): void {
  for (const secret of secrets) {
    // Very short values ("x", "none") would shred ordinary words; they are not real keys.
    if (secret.length >= 6) known.add(secret);
  }
}

/** Replace every known key and every key-shaped token in `text`. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const secret of known) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  KEY_SHAPES.lastIndex = 0;
  return KEY_SHAPES.test(out) ? out.replace(KEY_SHAPES, REDACTED) : out;
}
