/**
 * The `signature` FailProxy puts on the thinking it emits (and the
 * `encrypted_content` of Responses reasoning items). Clients send earlier
 * thinking back with its signature; reasoning upstreams such as DeepSeek need
 * that reasoning again, and some clients keep only the signature. So the token
 * carries the reasoning itself, compressed, and an HMAC that proves FailProxy
 * wrote it: `fp1.<base64url(deflate(reasoning))>.<base64url(hmac)>`.
 *
 * The secret is `FAILPROXY_THINKING_SECRET` when set, else random per process:
 * after a restart, earlier signatures are foreign and their thinking is dropped
 * (never an error), exactly like another provider's signatures.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

const VERSION = 'fp1';
/** Reasoning longer than this is not carried (the signature would dwarf the request). */
const MAX_CARRIED_BYTES = 256 * 1024;

export class ThinkingSigner {
  readonly #secret: Buffer;

  constructor(secret?: string) {
    this.#secret = secret ? Buffer.from(secret, 'utf8') : randomBytes(32);
  }

  sign(reasoning: string): string {
    const text = Buffer.byteLength(reasoning) > MAX_CARRIED_BYTES ? '' : reasoning;
    const payload = `${VERSION}.${deflateRawSync(Buffer.from(text, 'utf8')).toString('base64url')}`;
    return `${payload}.${this.#mac(payload)}`;
  }

  /** The reasoning a signature stands for, or null when FailProxy did not write it. */
  open(signature: unknown): string | null {
    if (typeof signature !== 'string' || !signature.startsWith(`${VERSION}.`)) return null;
    const dot = signature.lastIndexOf('.');
    const payload = signature.slice(0, dot);
    const mac = Buffer.from(signature.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.#mac(payload), 'base64url');
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return null;
    try {
      return inflateRawSync(Buffer.from(payload.slice(VERSION.length + 1), 'base64url'), {
        maxOutputLength: MAX_CARRIED_BYTES,
      }).toString('utf8');
    } catch {
      return null;
    }
  }

  #mac(payload: string): string {
    return createHmac('sha256', this.#secret).update(payload).digest('base64url');
  }
}

/** The process's signer: one secret for every front door, so their tokens are interchangeable. */
export const processSigner = new ThinkingSigner(process.env.FAILPROXY_THINKING_SECRET);
