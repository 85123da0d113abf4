import { createRemoteJWKSet, type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import { CacheError } from './errors.ts';

/**
 * JWT authentication and authorization shared by the edge and the origin
 * (docs/security.md). Runtime-free: `jose` runs on Node and in workerd alike.
 *
 * Token format (RFC 7519, JWS per RFC 7515), claims after the interface
 * control document §7:
 * - `service_id` (or `sub`): who calls;
 * - `scope`: space-separated list (RFC 8693 §4.2) of {@link scopes};
 * - `ns`: namespaces the caller may touch, `"*"` for all (admin);
 * - `exp` (required), `nbf`, `iss`, `aud` checked with a clock-skew allowance.
 */

/**
 * Every scope Strata knows (ICD §7.2), plus `purge:read`: reading the purge
 * log (`GET /api/v1/purges`), which an edge's own token carries.
 */
export const scopes = [
  'cache:read',
  'cache:write',
  'cache:delete',
  'cache:flush',
  'cache:reload',
  'metrics:read',
  'purge:read',
  // Distributed locks (docs/locks.md): acquire, renew, release and inspect in the namespace.
  'cache:lock',
] as const;
export type Scope = (typeof scopes)[number];

/** Namespace grant meaning "every namespace". */
export const allNamespaces = '*';

/** A verified caller. */
export interface Principal {
  /** `service_id`, else `sub`. */
  readonly serviceId: string;
  readonly scopes: ReadonlySet<string>;
  /** Namespaces granted; contains {@link allNamespaces} for admins. */
  readonly namespaces: ReadonlySet<string>;
}

/** Where verification keys come from and which registered claims must match. */
export interface AuthOptions {
  /** HS256 shared secret (UTF-8, at least 32 bytes). */
  readonly secret?: string;
  /** JWKS URL (RS256, ES256, EdDSA); fetched on demand, cached, refetched for an unknown `kid` (rotation). */
  readonly jwksUrl?: string;
  /** Required `iss`, when given. */
  readonly issuer?: string;
  /** Required `aud` (one of), when given. */
  readonly audience?: string;
  /** Allowed clock skew on `exp`/`nbf`, seconds. Default 30. */
  readonly clockSkewSeconds?: number;
  /** Milliseconds between JWKS refetches for an unknown `kid` (rotation). Default 30 000. */
  readonly jwksCooldownMs?: number;
  /** Verified tokens remembered (see {@link createVerifier}); 0 verifies every call. Default 10 000. */
  readonly verifiedTokens?: number;
}

/** How long a fetched JWKS is used before it is fetched again, ms (jose's `cacheMaxAge`). */
const jwksMaxAgeMs = 600_000;

interface Verified {
  readonly principal: Principal;
  /** Epoch ms after which the token is verified again: its `exp` plus the skew allowance, or sooner under a JWKS. */
  readonly untilMs: number;
  /** The key set the token was verified against (JWKS only): another one means verify again. */
  readonly keySet: unknown;
}

/**
 * Verifies a compact JWS and returns its principal. `atMs` (epoch ms) checks
 * `exp`/`nbf` as of that instant instead of now (the hub's grace for a token
 * that expired while its request was queued); such checks are never cached.
 */
export type Verifier = ((token: string, atMs?: number) => Promise<Principal>) & {
  /**
   * The principal of a token this verifier has already verified and would
   * answer now without checking its signature again (same rules as the call:
   * before `exp` plus the skew allowance, same key set), or undefined. Never
   * verifies, never throws: a hot path that must not wait uses it and hands
   * anything else to the call. Absent on verifiers that remember nothing.
   */
  readonly peek?: (token: string) => Principal | undefined;
};

/** Algorithms accepted from a JWKS; HS256 alone with a secret (no `alg` confusion between the two). */
export const jwksAlgorithms = ['RS256', 'ES256', 'EdDSA'] as const;

/** Smallest HS256 secret, bytes (RFC 7518 §3.2: a key of at least the hash size). */
export const minSecretBytes = 32;

/** True when the options name a key source, i.e. authentication is on. */
export function authConfigured(options: AuthOptions): boolean {
  return Boolean(options.secret || options.jwksUrl);
}

/**
 * Builds a verifier, or returns null when neither a secret nor a JWKS URL is
 * configured (authentication off).
 *
 * Errors of the returned function: AUTH_001 (401) for any bad token —
 * malformed, bad signature, expired, not yet valid, wrong issuer or audience,
 * no `exp`, no subject — without saying which; CACHE_005 (503) when the JWKS
 * cannot be fetched.
 *
 * Verified tokens are remembered (a bounded LRU of `verifiedTokens`, keyed
 * by the whole compact token, so a changed byte is a different token) and
 * answered without verifying the signature again until the token's `exp`
 * plus the clock-skew allowance — the same instant jose's own `exp` check
 * would start refusing it. Under a JWKS a remembered token is verified again
 * once the key set was fetched anew (a rotation or a removed key) and at
 * least every 10 minutes, the key set's own cache age, so a key withdrawn
 * by the identity provider stops being trusted when the key set says so.
 * Failures are never remembered. Signature checks dominate the cost of an
 * authenticated request (tens of µs each), which is why they are cached.
 * @throws Error at build time when both sources are given or the secret is short.
 */
export function createVerifier(options: AuthOptions): Verifier | null {
  if (options.secret && options.jwksUrl) throw new Error('set AUTH_JWT_SECRET or AUTH_JWKS_URL, not both');
  const clockTolerance = options.clockSkewSeconds ?? 30;
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    clockTolerance,
    requiredClaims: ['exp'],
  };
  let verify: (token: string, currentDate?: Date) => Promise<JWTPayload>;
  let keySet: () => unknown = () => undefined;
  if (options.secret) {
    const key = new TextEncoder().encode(options.secret);
    if (key.byteLength < minSecretBytes) throw new Error(`AUTH_JWT_SECRET must be at least ${minSecretBytes} bytes`);
    const hs = { ...verifyOptions, algorithms: ['HS256'] };
    verify = async (token, currentDate) => (await jwtVerify(token, key, { ...hs, currentDate })).payload;
  } else if (options.jwksUrl) {
    const jwks = createRemoteJWKSet(new URL(options.jwksUrl), {
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
      cacheMaxAge: jwksMaxAgeMs,
    });
    const asym = { ...verifyOptions, algorithms: [...jwksAlgorithms] };
    verify = async (token, currentDate) => (await jwtVerify(token, jwks, { ...asym, currentDate })).payload;
    keySet = () => jwks.jwks();
  } else {
    return null;
  }
  const max = options.verifiedTokens ?? 10_000;
  const verified = max > 0 ? new LRUCache<string, Verified>({ max }) : undefined;
  const jwksMode = Boolean(options.jwksUrl);
  const remembered = (token: string, now: number): Verified | undefined => {
    const known = verified?.get(token);
    return known && now < known.untilMs && known.keySet === keySet() ? known : undefined;
  };
  const verifier = async (token: string, atMs?: number): Promise<Principal> => {
    if (atMs !== undefined) {
      let payload: JWTPayload;
      try {
        payload = await verify(token, new Date(atMs));
      } catch (error) {
        throw verificationError(error);
      }
      const principal = principalOf(payload);
      if (!principal) throw unauthenticated();
      return principal;
    }
    const now = Date.now();
    const fresh = remembered(token, now);
    if (fresh) return fresh.principal;
    const known = verified?.get(token);
    let payload: JWTPayload;
    try {
      payload = await verify(token);
    } catch (error) {
      if (known) verified?.delete(token);
      throw verificationError(error);
    }
    const principal = principalOf(payload);
    if (!principal) throw unauthenticated();
    if (verified && typeof payload.exp === 'number') {
      const expiresMs = (payload.exp + clockTolerance) * 1000;
      const untilMs = jwksMode ? Math.min(expiresMs, now + jwksMaxAgeMs) : expiresMs;
      verified.set(token, { principal, untilMs, keySet: keySet() });
    }
    return principal;
  };
  if (!verified) return verifier;
  return Object.assign(verifier, { peek: (token: string) => remembered(token, Date.now())?.principal });
}

function verificationError(error: unknown): CacheError {
  // The key set failing to load is our outage, not the caller's fault.
  const keySourceDown =
    error instanceof joseErrors.JWKSTimeout ||
    error instanceof joseErrors.JWKSInvalid ||
    !(error instanceof joseErrors.JOSEError);
  return keySourceDown ? new CacheError('CACHE_005', 'Key set unavailable', { cause: error }) : unauthenticated(error);
}

/** 401 AUTH_001 with the ICD's message and nothing about which check failed. */
export function unauthenticated(cause?: unknown): CacheError {
  return new CacheError('AUTH_001', undefined, { cause });
}

/** 403 AUTH_002 with the ICD's message and nothing about which grant was missing. */
export function forbidden(): CacheError {
  return new CacheError('AUTH_002');
}

function principalOf(payload: JWTPayload): Principal | null {
  const serviceId = typeof payload.service_id === 'string' ? payload.service_id : payload.sub;
  if (!serviceId) return null;
  return { serviceId, scopes: new Set(listClaim(payload.scope)), namespaces: new Set(listClaim(payload.ns)) };
}

// `scope` is a space list (RFC 8693); an array is accepted too. `ns` is an array; a string is one namespace.
function listClaim(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/** The bearer token of an `Authorization` header (RFC 6750 §2.1), or undefined. */
export function bearerToken(header: string | null | undefined): string | undefined {
  const match = header ? /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header) : null;
  return match?.[1];
}

/**
 * Checks a grant: the principal holds `scope` and, when `namespace` is given,
 * may touch it (`"*"` grants every namespace; {@link allNamespaces} as the
 * `namespace` argument demands the admin grant itself).
 * @throws CacheError AUTH_002 (403).
 */
export function authorize(principal: Principal, scope: Scope, namespace?: string): void {
  if (!isAuthorized(principal, scope, namespace)) throw forbidden();
}

/**
 * {@link authorize} without the throw: whether the grant holds. For the hit
 * fast paths (`edge/fast-hit.ts`, `origin/fast-read.ts`), which leave a
 * refusal to the full path to answer (403 AUTH_002).
 */
export function isAuthorized(principal: Principal, scope: Scope, namespace?: string): boolean {
  if (!principal.scopes.has(scope)) return false;
  if (namespace === undefined || principal.namespaces.has(allNamespaces)) return true;
  return namespace !== allNamespaces && principal.namespaces.has(namespace);
}

/**
 * The scope a purge needs: `cache:flush` for a prefix (one request can empty
 * a namespace), `cache:delete` for keys and tags.
 */
export function purgeScope(request: { prefix?: string | null }): Scope {
  return request.prefix !== null && request.prefix !== undefined ? 'cache:flush' : 'cache:delete';
}

/** The auth variables of the edge and origin configs (shared/config.ts). */
export interface AuthConfig {
  readonly AUTH_JWT_SECRET?: string;
  readonly AUTH_JWKS_URL?: string;
  readonly AUTH_ISSUER?: string;
  readonly AUTH_AUDIENCE?: string;
  readonly AUTH_CLOCK_SKEW_SECONDS?: number;
}

/** Maps the `AUTH_*` variables to {@link AuthOptions}. */
export function authOptionsFromConfig(config: AuthConfig): AuthOptions {
  return {
    secret: config.AUTH_JWT_SECRET,
    jwksUrl: config.AUTH_JWKS_URL,
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
    clockSkewSeconds: config.AUTH_CLOCK_SKEW_SECONDS,
  };
}
