import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { scopes } from '../../shared/auth.ts';

/** Issuer and audience every test token carries unless told otherwise. */
export const testIssuer = 'strata-test-issuer';
export const testAudience = 'strata';

/** Claims of a test token; `expiresIn` in seconds from now (negative = already expired). */
export interface TokenClaims {
  readonly serviceId?: string;
  readonly scope?: readonly string[];
  readonly ns?: readonly string[];
  readonly audience?: string;
  readonly issuer?: string;
  readonly expiresIn?: number;
  readonly notBefore?: number;
  readonly extra?: JWTPayload;
}

/** Mints tokens the server under test trusts (`sign`) and ones it must not (`forge`: right shape, wrong key). */
export interface TokenIssuer {
  readonly name: string;
  /** Env vars that make an edge or origin trust this issuer. */
  readonly env: Record<string, string>;
  sign(claims?: TokenClaims): Promise<string>;
  forge(claims?: TokenClaims): Promise<string>;
  /** JWKS only: publishes a new RS256 key (`kid` rsa-2, …) and signs with it from now on; the old keys stay published. */
  rotate?(): Promise<void>;
  /** JWKS only: withdraws a published key (as an identity provider does after a compromise). */
  retire?(kid: string): void;
  /** JWKS only: the `kid` the next `sign` uses. */
  nextKid?(): string;
  close(): Promise<void>;
}

function payloadOf(claims: TokenClaims): JWTPayload {
  return {
    service_id: claims.serviceId ?? 'svc-test',
    scope: (claims.scope ?? scopes).join(' '),
    ns: [...(claims.ns ?? ['*'])],
    ...claims.extra,
  };
}

async function signWith(key: CryptoKey | Uint8Array, alg: string, kid: string | undefined, claims: TokenClaims) {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(payloadOf(claims))
    .setProtectedHeader(kid ? { alg, kid } : { alg })
    .setIssuedAt(now)
    .setIssuer(claims.issuer ?? testIssuer)
    .setAudience(claims.audience ?? testAudience)
    .setExpirationTime(now + (claims.expiresIn ?? 600));
  if (claims.notBefore !== undefined) jwt.setNotBefore(now + claims.notBefore);
  return await jwt.sign(key);
}

/** An HS256 issuer with a random 256-bit secret. */
export function hs256Issuer(): TokenIssuer {
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
  const other = new TextEncoder().encode(`${secret}-but-not-the-same-secret`);
  return {
    name: 'HS256',
    env: { AUTH_JWT_SECRET: secret, AUTH_ISSUER: testIssuer, AUTH_AUDIENCE: testAudience },
    sign: (claims = {}) => signWith(new TextEncoder().encode(secret), 'HS256', undefined, claims),
    forge: (claims = {}) => signWith(other, 'HS256', undefined, claims),
    close: async () => {},
  };
}

const algorithms = [
  { alg: 'RS256', kid: 'rsa-1' },
  { alg: 'ES256', kid: 'ec-1' },
  { alg: 'EdDSA', kid: 'ed-1' },
] as const;

/**
 * A JWKS issuer: one RS256, one ES256 and one Ed25519 key pair, the public
 * halves served as a JWK Set (RFC 7517 §5) by a tiny HTTP server on a free
 * loopback port. Tokens rotate through the three algorithms; `forge` signs
 * with a fresh key under a published `kid`.
 */
export async function jwksIssuer(): Promise<TokenIssuer> {
  const pairs = await Promise.all(
    algorithms.map(async ({ alg, kid }) => ({ alg, kid, ...(await generateKeyPair(alg, { extractable: true })) })),
  );
  let current: { alg: string; kid: string; privateKey: CryptoKey } | undefined;
  const keys: JWK[] = await Promise.all(
    pairs.map(async (p) => ({ ...(await exportJWK(p.publicKey)), kid: p.kid, alg: p.alg, use: 'sig' })),
  );
  const server: Server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const impostor = await generateKeyPair('RS256');
  let turn = 0;
  return {
    name: 'JWKS',
    env: {
      AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      AUTH_ISSUER: testIssuer,
      AUTH_AUDIENCE: testAudience,
    },
    sign: (claims = {}) => {
      const p = current ?? pairs[turn++ % pairs.length]!;
      return signWith(p.privateKey, p.alg, p.kid, claims);
    },
    rotate: async () => {
      const kid = `rsa-${keys.length}`;
      const pair = {
        alg: 'RS256' as const,
        kid,
        ...(await generateKeyPair('RS256', { extractable: true })),
      };
      keys.push({ ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' });
      current = pair;
    },
    retire: (kid) => {
      const i = keys.findIndex((k) => k.kid === kid);
      if (i >= 0) keys.splice(i, 1);
    },
    nextKid: () => (current ?? pairs[turn % pairs.length]!).kid,
    forge: (claims = {}) => signWith(impostor.privateKey, 'RS256', 'rsa-1', claims),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
