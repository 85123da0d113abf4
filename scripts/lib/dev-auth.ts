import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SignJWT } from 'jose';
import { type Scope, scopes } from '../../shared/auth.ts';

/** Issuer of tokens minted by `npm start` and `npm run token` in development mode (docs/security.md). */
export const devIssuer = 'strata-dev';

/**
 * Where development mode keeps its HS256 secret between runs: `.strata/dev-secret`
 * in the repository (git-ignored), mode 0600, so `npm run token` mints tokens
 * `npm start` accepts and a restart keeps printed tokens valid.
 */
export const devSecretPath = resolve(import.meta.dirname, '..', '..', '.strata', 'dev-secret');

/** A random HS256 secret for development: 32 bytes, base64url (43 characters). */
export function randomDevSecret(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
}

/** The stored development secret, or undefined when none was written yet. */
export function readDevSecret(path = devSecretPath): string | undefined {
  try {
    const secret = readFileSync(path, 'utf8').trim();
    return secret.length > 0 ? secret : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * The stored development secret, created on first use. The file is written
 * with mode 0600 (owner read/write only) and its mode is re-tightened on
 * every run, since a copy or an archive may have widened it.
 */
export function loadOrCreateDevSecret(path = devSecretPath): string {
  const existing = readDevSecret(path);
  if (existing) {
    chmodSync(path, 0o600);
    return existing;
  }
  const secret = randomDevSecret();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return secret;
}

/**
 * Signs an HS256 token (RFC 7519) with Strata's claims: `service_id`,
 * `scope` (space list), `ns` (namespaces, `*` = all), `iss`, `iat`, `exp`.
 * @param ttlSeconds lifetime in seconds.
 */
export async function signServiceToken(
  secret: string,
  claims: { serviceId: string; scope?: readonly Scope[]; ns?: readonly string[]; issuer?: string; audience?: string },
  ttlSeconds: number,
): Promise<string> {
  const jwt = new SignJWT({
    service_id: claims.serviceId,
    scope: (claims.scope ?? scopes).join(' '),
    ns: [...(claims.ns ?? ['*'])],
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds);
  if (claims.issuer) jwt.setIssuer(claims.issuer);
  if (claims.audience) jwt.setAudience(claims.audience);
  return await jwt.sign(new TextEncoder().encode(secret));
}
