/**
 * Coinbase CDP API keys and the JWT that authenticates each Advanced Trade request. A CDP key is a
 * key name (`organizations/{org}/apiKeys/{id}`) and a private key: ECDSA P-256 as PEM (`ES256`) or
 * Ed25519 as base64 (64 bytes: seed then public key, or the 32-byte seed; `EdDSA`), or any PKCS#8
 * PEM. Each request carries `Authorization: Bearer <jwt>` with the claims
 * `{ iss: "cdp", sub: keyName, nbf: now, exp: now + 120, uri: "<METHOD> <host><path>" }` and the
 * header `{ alg, kid: keyName, nonce: <random hex>, typ: "JWT" }`. Never logged.
 */
import { createPrivateKey, type KeyObject, randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import * as z from 'zod';
import { InvalidParameterError } from '../../core/errors.js';

/** A CDP API key as Secrets Manager or the environment holds it. */
export const cdpKeySchema = z
  .object({
    /** The key name, the JWT's `sub` and `kid`. */
    name: z.string().min(1),
    /** PEM (EC or PKCS#8), or base64 Ed25519. Escaped `\n` are read as newlines. */
    privateKey: z.string().min(1),
  })
  .strict();
export type CdpKey = z.infer<typeof cdpKeySchema>;

/** A key ready to sign with. */
export interface SigningKey {
  readonly name: string;
  readonly alg: 'ES256' | 'EdDSA';
  readonly key: KeyObject;
}

/** JWT lifetime Coinbase allows: two minutes. */
export const JWT_LIFETIME_SECONDS = 120;

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Reads a CDP key; throws {@link InvalidParameterError} naming the key (never its secret) when unusable. */
export function loadSigningKey(cdp: CdpKey): SigningKey {
  const text = cdp.privateKey.replace(/\\n/g, '\n').trim();
  let key: KeyObject;
  try {
    if (text.includes('-----BEGIN')) {
      key = createPrivateKey(text);
    } else {
      const raw = Buffer.from(text, 'base64');
      if (raw.length !== 64 && raw.length !== 32) throw new Error(`${raw.length} bytes, expected 32 or 64`);
      const der = Buffer.concat([ED25519_PKCS8_PREFIX, raw.subarray(0, 32)]);
      key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    }
  } catch (error) {
    throw new InvalidParameterError(
      `Coinbase key ${cdp.name}: the private key is neither an EC/PKCS#8 PEM nor a base64 Ed25519 key`,
      { cause: error },
    );
  }
  if (key.asymmetricKeyType === 'ed25519') return { name: cdp.name, alg: 'EdDSA', key };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { name: cdp.name, alg: 'ES256', key };
  }
  throw new InvalidParameterError(
    `Coinbase key ${cdp.name}: unsupported key type ${key.asymmetricKeyType} (ES256 on P-256, or Ed25519)`,
  );
}

/**
 * The JWT of one request. `host` is the API host with its port when it has one (`api.coinbase.com`,
 * `127.0.0.1:54321`); `path` has no query string; `nowMs` is the signing time.
 */
export async function requestJwt(
  key: SigningKey,
  method: string,
  host: string,
  path: string,
  nowMs: number,
): Promise<string> {
  const now = Math.floor(nowMs / 1000);
  return new SignJWT({
    iss: 'cdp',
    sub: key.name,
    nbf: now,
    exp: now + JWT_LIFETIME_SECONDS,
    uri: `${method} ${host}${path}`,
  })
    .setProtectedHeader({ alg: key.alg, kid: key.name, nonce: randomBytes(16).toString('hex'), typ: 'JWT' })
    .sign(key.key);
}
