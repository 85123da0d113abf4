import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { type Scope, scopes } from '../../shared/auth.ts';
import { hs256Issuer, jwksIssuer, type TokenIssuer } from '../support/jwt.ts';
import { edgeFor, originFor } from '../support/stack.ts';

/**
 * The auth matrix of issue 6: every endpoint × {no token, malformed, expired,
 * wrong signature, wrong audience, missing scope, other namespace, good},
 * against the edge and the origin, with an HS256 secret and with a JWKS
 * (RS256, ES256, EdDSA) served by the test. Real servers, real tokens.
 */

const ns = 'tenant-a';
let counter = 0;
const fresh = () => `k${++counter}`;

type Target = 'edge' | 'origin';

interface Endpoint {
  readonly name: string;
  readonly targets: readonly Target[];
  /** Scope needed; null = open to everyone. */
  readonly scope: Scope | null;
  /** Whether the grant is tied to `ns` (or `*` for `admin`). */
  readonly namespaced: boolean;
  readonly admin?: boolean;
  readonly ok: number;
  request(): { method: string; path: string; body?: string; type?: string };
}

const json = (body: unknown) => ({ body: JSON.stringify(body), type: 'application/json' });

const endpoints: Endpoint[] = [
  {
    name: 'GET /health',
    targets: ['edge', 'origin'],
    scope: null,
    namespaced: false,
    ok: 200,
    request: () => ({ method: 'GET', path: '/health' }),
  },
  {
    name: 'GET /metrics',
    targets: ['edge', 'origin'],
    scope: 'metrics:read',
    namespaced: false,
    ok: 200,
    request: () => ({ method: 'GET', path: '/metrics' }),
  },
  {
    name: 'GET a key',
    targets: ['edge', 'origin'],
    scope: 'cache:read',
    namespaced: true,
    ok: 200,
    request: () => ({ method: 'GET', path: `/api/v1/cache/${ns}/seed` }),
  },
  {
    name: 'PUT a key',
    targets: ['edge', 'origin'],
    scope: 'cache:write',
    namespaced: true,
    ok: 200,
    request: () => ({ method: 'PUT', path: `/api/v1/cache/${ns}/${fresh()}?ttl=60`, body: 'v', type: 'text/plain' }),
  },
  {
    name: 'DELETE a key',
    targets: ['edge', 'origin'],
    scope: 'cache:delete',
    namespaced: true,
    ok: 200,
    request: () => ({ method: 'DELETE', path: `/api/v1/cache/${ns}/${fresh()}` }),
  },
  {
    name: 'POST batch/get',
    targets: ['edge', 'origin'],
    scope: 'cache:read',
    namespaced: true,
    ok: 200,
    request: () => ({ method: 'POST', path: `/api/v1/cache/${ns}/batch/get`, ...json({ keys: ['seed'] }) }),
  },
  {
    name: 'POST batch/set',
    targets: ['edge', 'origin'],
    scope: 'cache:write',
    namespaced: true,
    ok: 200,
    request: () => ({
      method: 'POST',
      path: `/api/v1/cache/${ns}/batch/set`,
      ...json({ entries: { [fresh()]: 'v' }, ttl: 60 }),
    }),
  },
  {
    name: 'POST /api/v1/purge by keys',
    targets: ['edge', 'origin'],
    scope: 'cache:delete',
    namespaced: true,
    ok: 200,
    request: () => ({ method: 'POST', path: '/api/v1/purge', ...json({ namespace: ns, keys: [fresh()] }) }),
  },
  {
    name: 'POST /api/v1/purge by prefix',
    targets: ['edge', 'origin'],
    scope: 'cache:flush',
    namespaced: true,
    ok: 200,
    request: () => ({ method: 'POST', path: '/api/v1/purge', ...json({ namespace: ns, prefix: fresh() }) }),
  },
  {
    name: 'POST /api/v1/invalidations',
    targets: ['origin'],
    scope: 'cache:delete',
    namespaced: true,
    ok: 200,
    request: () => ({
      method: 'POST',
      path: '/api/v1/invalidations',
      ...json({
        id: crypto.randomUUID(),
        namespace: ns,
        keys: [fresh()],
        tags: [],
        prefix: null,
        action: 'delete',
        timestamp: Date.now(),
      }),
    }),
  },
  {
    name: 'GET /api/v1/purge/stream',
    targets: ['origin'],
    scope: 'cache:read',
    namespaced: true,
    admin: true,
    ok: 200,
    request: () => ({ method: 'GET', path: '/api/v1/purge/stream' }),
  },
  {
    name: 'POST /api/v1/purge/applied',
    targets: ['origin'],
    scope: 'cache:read',
    namespaced: true,
    admin: true,
    ok: 204,
    request: () => ({
      method: 'POST',
      path: '/api/v1/purge/applied',
      ...json({ edge_id: 'edge-1', position: 'l:i:1' }),
    }),
  },
  {
    name: 'GET /api/v1/purges',
    targets: ['origin'],
    scope: 'purge:read',
    namespaced: true,
    admin: true,
    ok: 200,
    request: () => ({ method: 'GET', path: '/api/v1/purges' }),
  },
];

type Case = { name: string; token: (e: Endpoint) => Promise<string | undefined>; expect: (e: Endpoint) => number };

function cases(issuer: TokenIssuer): Case[] {
  const grant = (e: Endpoint) => (e.admin ? ['*'] : [ns]);
  const good = (e: Endpoint) => issuer.sign({ scope: e.scope ? [e.scope] : [], ns: grant(e) });
  const open = (status: number) => (e: Endpoint) => (e.scope === null ? e.ok : status);
  return [
    { name: 'no token', token: async () => undefined, expect: open(401) },
    { name: 'malformed token', token: async () => 'not.a.jwt', expect: open(401) },
    { name: 'expired token', token: (e) => issuer.sign({ ns: grant(e), expiresIn: -3600 }), expect: open(401) },
    { name: 'wrong signature', token: (e) => issuer.forge({ ns: grant(e) }), expect: open(401) },
    {
      name: 'wrong audience',
      token: (e) => issuer.sign({ ns: grant(e), audience: 'another-service' }),
      expect: open(401),
    },
    {
      name: 'missing scope',
      token: (e) => issuer.sign({ scope: scopes.filter((s) => s !== e.scope), ns: grant(e) }),
      expect: open(403),
    },
    {
      name: 'other namespace',
      token: (e) => issuer.sign({ scope: e.scope ? [e.scope] : [], ns: ['tenant-b'] }),
      expect: (e) => (e.scope === null || !e.namespaced ? e.ok : 403),
    },
    { name: 'good token', token: good, expect: (e) => e.ok },
  ];
}

async function call(base: string, e: Endpoint, token: string | undefined): Promise<Response> {
  const { method, path, body, type } = e.request();
  const headers: Record<string, string> = {};
  if (type) headers['Content-Type'] = type;
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  const abort = new AbortController();
  const res = await fetch(`${base}${path}`, { method, body, headers, signal: abort.signal });
  return Object.assign(res, { abort: () => abort.abort() });
}

async function finish(res: Response & { abort?: () => void }): Promise<string> {
  if (res.headers.get('Content-Type')?.startsWith('text/event-stream')) {
    res.abort?.();
    return '';
  }
  return await res.text();
}

for (const makeIssuer of [hs256Issuer, jwksIssuer]) {
  describe(`auth matrix (${makeIssuer === hs256Issuer ? 'HS256 secret' : 'JWKS: RS256, ES256, EdDSA'})`, () => {
    let issuer: TokenIssuer;
    let origin: RunningOrigin;
    let edge: RunningEdge;

    beforeAll(async () => {
      issuer = await makeIssuer();
      origin = await originFor(issuer.env);
      const edgeToken = await issuer.sign({ serviceId: 'edge-1', ns: ['*'] });
      edge = await edgeFor(origin.url, { ...issuer.env, EDGE_ORIGIN_TOKEN: edgeToken });
      const admin = await issuer.sign({ ns: ['*'] });
      const seeded = await fetch(`${origin.url}/api/v1/cache/${ns}/seed?ttl=600`, {
        method: 'PUT',
        body: 'seed-value',
        headers: { Authorization: `Bearer ${admin}` },
      });
      expect(seeded.status).toBe(200);
    });

    afterAll(async () => {
      await edge?.close();
      await origin?.close();
      await issuer?.close();
    });

    for (const target of ['edge', 'origin'] as const) {
      for (const e of endpoints.filter((x) => x.targets.includes(target))) {
        it(`${target}: ${e.name} answers each credential as documented`, async () => {
          const base = target === 'edge' ? edge.url : origin.url;
          const seen: string[] = [];
          const wanted: string[] = [];
          for (const c of cases(issuer)) {
            const res = await call(base, e, await c.token(e));
            const text = await finish(res);
            const want = c.expect(e);
            seen.push(`${c.name}: ${res.status}`);
            wanted.push(`${c.name}: ${want}`);
            if (res.status === 401 || res.status === 403) {
              const body = JSON.parse(text) as { error: { code: string; message: string } };
              // The envelope says which code, never which check failed.
              expect(body.error).toMatchObject(
                res.status === 401
                  ? { code: 'AUTH_001', message: 'Invalid credentials' }
                  : { code: 'AUTH_002', message: 'Insufficient permissions' },
              );
            }
            if (res.status === 401) expect(res.headers.get('WWW-Authenticate')).toMatch(/^Bearer /);
          }
          expect(seen).toEqual(wanted);
        });
      }
    }

    it('the edge stops unauthenticated and unauthorised reads before the origin', async () => {
      const before = edge.originLoads;
      const outsider = await issuer.sign({ scope: ['cache:read'], ns: ['tenant-b'] });
      for (const token of [undefined, 'x', outsider]) {
        const res = await fetch(`${edge.url}/api/v1/cache/${ns}/never-loaded`, {
          headers: token ? { Authorization: `Bearer ${token}` } : {},
        });
        await res.text();
        expect([401, 403]).toContain(res.status);
      }
      expect(edge.originLoads).toBe(before);
    });

    it('the edge relays writes with its own credential and keeps the purge stream up', async () => {
      const writer = await issuer.sign({ scope: ['cache:write', 'cache:read'], ns: [ns] });
      const put = await fetch(`${edge.url}/api/v1/cache/${ns}/via-edge`, {
        method: 'PUT',
        body: 'from the edge',
        headers: { Authorization: `Bearer ${writer}` },
      });
      expect(put.status).toBe(200);
      const admin = await issuer.sign({ ns: ['*'] });
      const read = await fetch(`${origin.url}/api/v1/cache/${ns}/via-edge`, {
        headers: { Authorization: `Bearer ${admin}` },
      });
      expect(await read.text()).toBe('from the edge');
      expect(edge.subscription.connected).toBe(true);
    });

    it('gRPC (Connect protocol) answers each credential as documented', async () => {
      const rpc = async (method: string, body: unknown, token?: string) => {
        const res = await fetch(`${origin.url}/strata.cache.v1.CacheService/${method}`, {
          method: 'POST',
          body: JSON.stringify(body),
          headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        });
        const text = await res.text();
        return { status: res.status, code: res.ok ? 'ok' : (JSON.parse(text) as { code: string }).code };
      };
      const reader = await issuer.sign({ scope: ['cache:read'], ns: [ns] });
      const outsider = await issuer.sign({ scope: ['cache:read'], ns: ['tenant-b'] });
      const expired = await issuer.sign({ scope: ['cache:read'], ns: [ns], expiresIn: -3600 });
      const forged = await issuer.forge({ scope: ['cache:read'], ns: [ns] });
      const get = { namespace: ns, key: 'seed' };
      expect(await rpc('Get', get)).toMatchObject({ code: 'unauthenticated' });
      expect(await rpc('Get', get, expired)).toMatchObject({ code: 'unauthenticated' });
      expect(await rpc('Get', get, forged)).toMatchObject({ code: 'unauthenticated' });
      expect(await rpc('Get', get, outsider)).toMatchObject({ code: 'permission_denied' });
      expect(await rpc('Get', get, reader)).toMatchObject({ code: 'ok' });
      expect(await rpc('Set', { namespace: ns, key: fresh(), value: 'dg==' }, reader)).toMatchObject({
        code: 'permission_denied',
      });
      expect(await rpc('Purge', { namespace: ns, prefix: 'p' }, reader)).toMatchObject({ code: 'permission_denied' });
      const deleter = await issuer.sign({ scope: ['cache:delete'], ns: [ns] });
      expect(await rpc('Purge', { namespace: ns, prefix: 'p' }, deleter)).toMatchObject({
        code: 'permission_denied',
      });
      expect(await rpc('Purge', { namespace: ns, keys: ['p'] }, deleter)).toMatchObject({ code: 'ok' });
      expect(await rpc('Health', {})).toMatchObject({ code: 'ok' });
    });
  });
}
