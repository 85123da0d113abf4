import { SignJWT } from 'jose';
import { type Scope, scopes } from '../../shared/auth.ts';

/** Issuer of tokens minted by `npm start` (docs/security.md, "Development mode"). */
export const devIssuer = 'strata-dev';

/** A random HS256 secret for one development run: 32 bytes, base64url (43 characters). */
export function randomDevSecret(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
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
