import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { authorize, bearerToken, createVerifier, isAuthorized, purgeScope } from '../../shared/auth.ts';
import { restAccess } from '../../shared/auth-http.ts';
import { CacheError } from '../../shared/errors.ts';

const secret = 'a-test-secret-of-at-least-32-bytes!!';
const key = new TextEncoder().encode(secret);
const now = () => Math.floor(Date.now() / 1000);

async function token(payload: Record<string, unknown>, over: { exp?: number | null; nbf?: number } = {}) {
  const jwt = new SignJWT(payload).setProtectedHeader({ alg: 'HS256' });
  if (over.exp !== null) jwt.setExpirationTime(over.exp ?? now() + 60);
  if (over.nbf !== undefined) jwt.setNotBefore(over.nbf);
  return await jwt.sign(key);
}

async function codeOf(run: Promise<unknown>): Promise<string> {
  try {
    await run;
    return 'ok';
  } catch (error) {
    return error instanceof CacheError ? error.code : String(error);
  }
}

describe('JWT verification', () => {
  const verify = createVerifier({ secret, clockSkewSeconds: 30 })!;

  it('reads service_id, falls back to sub, and splits the scope list', async () => {
    const p = await verify(await token({ service_id: 'svc', scope: 'cache:read  cache:write', ns: ['a'] }));
    expect(p.serviceId).toBe('svc');
    expect([...p.scopes]).toEqual(['cache:read', 'cache:write']);
    expect((await verify(await token({ sub: 'by-sub' }))).serviceId).toBe('by-sub');
  });

  it('tolerates clock skew within the allowance and no more', async () => {
    expect(await codeOf(verify(await token({ sub: 's' }, { exp: now() - 10 })))).toBe('ok');
    expect(await codeOf(verify(await token({ sub: 's' }, { exp: now() - 120 })))).toBe('AUTH_001');
    expect(await codeOf(verify(await token({ sub: 's' }, { nbf: now() + 10 })))).toBe('ok');
    expect(await codeOf(verify(await token({ sub: 's' }, { nbf: now() + 120 })))).toBe('AUTH_001');
  });

  it('rejects a token without exp or without a subject', async () => {
    expect(await codeOf(verify(await token({ sub: 's' }, { exp: null })))).toBe('AUTH_001');
    expect(await codeOf(verify(await token({ scope: 'cache:read' })))).toBe('AUTH_001');
  });

  it('rejects alg none and an RS/HS confusion attempt', async () => {
    const [h, p] = (await token({ sub: 's' })).split('.');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`;
    expect(await codeOf(verify(none))).toBe('AUTH_001');
    expect(await codeOf(verify(`${h}.${p}.AAAA`))).toBe('AUTH_001');
  });

  it('is off without a key source and refuses ambiguous or weak configuration', () => {
    expect(createVerifier({})).toBeNull();
    expect(() => createVerifier({ secret, jwksUrl: 'http://127.0.0.1:1/jwks' })).toThrow(/not both/);
    expect(() => createVerifier({ secret: 'short' })).toThrow(/32 bytes/);
  });

  it('answers CACHE_005, not AUTH_001, when the JWKS cannot be fetched', async () => {
    const jwks = createVerifier({ jwksUrl: 'http://127.0.0.1:1/jwks.json' })!;
    const rs = `${Buffer.from('{"alg":"RS256","kid":"k"}').toString('base64url')}.${Buffer.from('{"sub":"s"}').toString('base64url')}.AAAA`;
    expect(await codeOf(jwks(rs))).toBe('CACHE_005');
  });
});

describe('grants', () => {
  const principal = { serviceId: 's', scopes: new Set(['cache:read']), namespaces: new Set(['a']) };
  const admin = { serviceId: 'root', scopes: new Set(['cache:read']), namespaces: new Set(['*']) };

  it('needs the scope and the namespace; "*" grants every namespace and the admin-only ones', () => {
    expect(() => authorize(principal, 'cache:read', 'a')).not.toThrow();
    expect(() => authorize(principal, 'cache:read', 'b')).toThrow(CacheError);
    expect(() => authorize(principal, 'cache:write', 'a')).toThrow(CacheError);
    expect(() => authorize(principal, 'cache:read', '*')).toThrow(CacheError);
    expect(() => authorize(admin, 'cache:read', 'anything')).not.toThrow();
    expect(() => authorize(admin, 'cache:read', '*')).not.toThrow();
  });

  it('isAuthorized answers what authorize decides, without throwing', () => {
    const cases: [typeof principal, 'cache:read' | 'cache:write', string | undefined][] = [];
    for (const who of [principal, admin])
      for (const scope of ['cache:read', 'cache:write'] as const)
        for (const ns of ['a', 'b', '*', undefined]) cases.push([who, scope, ns]);
    for (const [who, scope, ns] of cases) {
      let allowed = true;
      try {
        authorize(who, scope, ns);
      } catch {
        allowed = false;
      }
      expect([who.serviceId, scope, ns, isAuthorized(who, scope, ns)]).toEqual([who.serviceId, scope, ns, allowed]);
    }
    expect(isAuthorized(principal, 'cache:read', 'a')).toBe(true);
    expect(isAuthorized(principal, 'cache:read', 'b')).toBe(false);
  });

  it('maps endpoints to grants', () => {
    expect(restAccess('GET', '/health')).toBe('open');
    expect(restAccess('GET', '/api/v1/cache/a/k')).toEqual({ scope: 'cache:read', namespace: 'a' });
    expect(restAccess('GET', '/api/v1/cache/a%2Db/k')).toEqual({ scope: 'cache:read', namespace: 'a-b' });
    expect(restAccess('POST', '/api/v1/cache/a/batch/set')).toEqual({ scope: 'cache:write', namespace: 'a' });
    expect(restAccess('DELETE', '/api/v1/cache/a/k')).toEqual({ scope: 'cache:delete', namespace: 'a' });
    expect(restAccess('POST', '/api/v1/purge')).toBe('authenticated');
    expect(restAccess('GET', '/metrics')).toEqual({ scope: 'metrics:read' });
    expect(restAccess('GET', '/api/v1/purge/stream')).toEqual({ scope: 'cache:read', namespace: '*' });
    expect(restAccess('POST', '/api/v1/purge/applied')).toEqual({ scope: 'cache:read', namespace: '*' });
    expect(purgeScope({ prefix: 'p' })).toBe('cache:flush');
    expect(purgeScope({ prefix: null })).toBe('cache:delete');
  });

  it('accepts only well-formed bearer headers', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
