import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLockClient, type LockClient } from '../../client/index.ts';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { headers } from '../../shared/headers.ts';
import { hs256Issuer } from '../support/jwt.ts';
import { scrape, value } from '../support/prometheus.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

interface Grant {
  namespace: string;
  name: string;
  token: number;
  expires_at_ms: number;
}

let counter = 0;
const fresh = (prefix: string) => `${prefix}${Date.now().toString(36)}${counter++}`;

/** REST calls on one lock at `base` (an origin or an edge). */
function restLock(base: string, ns: string, name: string, auth: Record<string, string> = {}) {
  const url = `${base}/api/v1/locks/${ns}/${encodeURIComponent(name)}`;
  const tokenHeader = (token: number | string) => ({ ...auth, [headers.lockToken]: String(token) });
  return {
    acquire: (query: string) => fetch(`${url}?${query}`, { method: 'POST', headers: auth }),
    renew: (token: number | string, query: string) =>
      fetch(`${url}/renew?${query}`, { method: 'PUT', headers: tokenHeader(token) }),
    release: (token: number | string) => fetch(url, { method: 'DELETE', headers: tokenHeader(token) }),
    get: () => fetch(url, { headers: auth }),
  };
}

async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

function icdCode(error: unknown): string | null {
  return error instanceof ConnectError ? error.metadata.get('x-cache-error-code') : null;
}

for (const store of ['memory', 'redis'] as const) {
  describe(`lock API on the ${store} store: REST at origin and edge, gRPC, typed client`, () => {
    let origin: RunningOrigin;
    let edge: RunningEdge;
    let client: LockClient;
    const ns = fresh('locks');

    beforeAll(async () => {
      origin = await originFor(store === 'redis' ? { REDIS_URL: inject('redisUrl') } : {});
      edge = await edgeFor(origin.url);
      client = createLockClient({ baseUrl: origin.url, namespace: ns, timeoutMs: 10_000 });
    });
    afterAll(async () => {
      await edge?.close();
      await origin?.close();
    });

    it('acquire, refuse while held, inspect, renew and release with the token, 404 when free', async () => {
      const lock = restLock(origin.url, ns, 'rebuild:42');
      const res = await lock.acquire('ttl=30');
      expect(res.status).toBe(200);
      const grant = (await res.json()) as Grant;
      expect(grant).toMatchObject({ namespace: ns, name: 'rebuild:42' });
      expect(Number.isSafeInteger(grant.token)).toBe(true);
      expect(grant.expires_at_ms).toBeGreaterThan(Date.now() + 20_000);

      const held = await lock.acquire('ttl=30');
      expect(held.status).toBe(409);
      expect(await errorCode(held)).toBe('LOCK_001');

      const seen = (await (await lock.get()).json()) as Grant;
      expect(seen.token).toBe(grant.token);

      for (const wrong of [grant.token + 1, grant.token - 1]) {
        const renew = await lock.renew(wrong, 'ttl=60');
        expect(renew.status).toBe(409);
        expect(await errorCode(renew)).toBe('LOCK_001');
        const release = await lock.release(wrong);
        expect(release.status).toBe(409);
        expect(await errorCode(release)).toBe('LOCK_001');
      }
      const renewed = await lock.renew(grant.token, 'ttl=60');
      expect(renewed.status).toBe(200);
      expect(((await renewed.json()) as Grant).expires_at_ms).toBeGreaterThan(grant.expires_at_ms);

      const released = await lock.release(grant.token);
      expect(released.status).toBe(200);
      expect(await released.json()).toEqual({ namespace: ns, name: 'rebuild:42', released: true });
      const free = await lock.get();
      expect(free.status).toBe(404);
      expect(await errorCode(free)).toBe('CACHE_001');
      const next = (await (await lock.acquire('ttl=30')).json()) as Grant;
      expect(next.token).toBeGreaterThan(grant.token);
    });

    it('refuses bad input with CACHE_004', async () => {
      const lock = restLock(origin.url, ns, 'input');
      for (const query of ['', 'ttl=0', 'ttl=1.5', 'ttl=86401', 'ttl=abc', 'ttl=5&wait=-1', 'ttl=5&wait=soon']) {
        const res = await lock.acquire(query);
        expect(res.status, query).toBe(400);
        expect(await errorCode(res)).toBe('CACHE_004');
      }
      const missingToken = await fetch(`${origin.url}/api/v1/locks/${ns}/input`, { method: 'DELETE' });
      expect(missingToken.status).toBe(400);
      for (const token of ['abc', '0', '-3', '1e5', '99999999999999999999']) {
        const res = await lock.release(token);
        expect(res.status, token).toBe(400);
        expect(await errorCode(res)).toBe('CACHE_004');
      }
      // 16 digits but above 2^53 − 1: no grant can have it, so it holds nothing.
      const huge = await lock.release('9564008793358547');
      expect(huge.status).toBe(409);
      expect(await errorCode(huge)).toBe('LOCK_001');
      const badNs = await fetch(`${origin.url}/api/v1/locks/Bad/x?ttl=5`, { method: 'POST' });
      expect(badNs.status).toBe(400);
    });

    it('a waiting acquire gets the lock when the holder releases, and times out with LOCK_001 when it does not', async () => {
      const lock = restLock(origin.url, ns, 'waited');
      const first = (await (await lock.acquire('ttl=30')).json()) as Grant;
      const timedOut = await lock.acquire('ttl=30&wait=0.3');
      expect(timedOut.status).toBe(409);
      expect(await errorCode(timedOut)).toBe('LOCK_001');
      expect(((await (await lock.get()).json()) as Grant).token).toBe(first.token);

      const waiting = lock.acquire('ttl=30&wait=10');
      await lock.release(first.token);
      const res = await waiting;
      expect(res.status).toBe(200);
      expect(((await res.json()) as Grant).token).toBeGreaterThan(first.token);
    });

    it('expiry frees the lock for the next acquire', async () => {
      const lock = restLock(origin.url, ns, 'short');
      const first = (await (await lock.acquire('ttl=1')).json()) as Grant;
      const res = await lock.acquire('ttl=30&wait=5');
      expect(res.status).toBe(200);
      const second = (await res.json()) as Grant;
      expect(second.token).toBeGreaterThan(first.token);
      const stale = await lock.release(first.token);
      expect(stale.status).toBe(409);
    });

    it('the edge relays the lock API to the origin, uncached', async () => {
      const viaEdge = restLock(edge.url, ns, 'edge-lock');
      const direct = restLock(origin.url, ns, 'edge-lock');
      const grant = (await (await viaEdge.acquire('ttl=30')).json()) as Grant;
      expect(((await (await direct.get()).json()) as Grant).token).toBe(grant.token);
      const held = await viaEdge.acquire('ttl=30');
      expect(held.status).toBe(409);
      expect(await errorCode(held)).toBe('LOCK_001');
      expect((await viaEdge.renew(grant.token + 1, 'ttl=30')).status).toBe(409);
      expect((await viaEdge.renew(grant.token, 'ttl=30')).status).toBe(200);
      expect((await viaEdge.release(grant.token)).status).toBe(200);
      // Not cached at the edge: the release shows through it at once.
      expect((await viaEdge.get()).status).toBe(404);
    });

    it('gRPC: AcquireLock, GetLock, RenewLock, ReleaseLock with ABORTED (LOCK_001) for a held lock or a wrong token', async () => {
      const lease = await client.acquire('grpc-lock', { ttlSeconds: 30 });
      expect((await client.get('grpc-lock'))?.token).toBe(lease.token);
      const refused = await client.acquire('grpc-lock', { ttlSeconds: 30 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ConnectError);
      expect((refused as ConnectError).code).toBe(Code.Aborted);
      expect(icdCode(refused)).toBe('LOCK_001');
      const wrong = await client.release('grpc-lock', lease.token + 1).catch((e: unknown) => e);
      expect((wrong as ConnectError).code).toBe(Code.Aborted);
      const renewed = await client.renew('grpc-lock', lease.token, 60);
      expect(renewed.expiresAtMs).toBeGreaterThan(lease.expiresAtMs);
      await client.release('grpc-lock', lease.token);
      expect(await client.get('grpc-lock')).toBeNull();
      const bad = await client.acquire('grpc-lock', { ttlSeconds: 0 }).catch((e: unknown) => e);
      expect((bad as ConnectError).code).toBe(Code.InvalidArgument);
    });

    it('withLock passes the token, renews while the function runs, and releases afterwards', async () => {
      let seen: { token: number; expiresAtMs: number } | null = null;
      const result = await client.withLock(
        'job',
        async (lock) => {
          seen = { token: lock.token, expiresAtMs: lock.expiresAtMs };
          expect((await client.get('job'))?.token).toBe(lock.token);
          // Renewal happens every ttl/3 (1 s here): wait, by polling, until the lease has moved.
          await eventually(
            'the lease to be renewed',
            async () => ((await client.get('job'))?.expiresAtMs ?? 0) > lock.expiresAtMs,
          );
          const other = await client.acquire('job', { ttlSeconds: 3 }).catch((e: unknown) => e);
          expect(icdCode(other)).toBe('LOCK_001');
          expect(lock.signal.aborted).toBe(false);
          return 'done';
        },
        { ttlSeconds: 3 },
      );
      expect(result).toBe('done');
      expect(seen).not.toBeNull();
      expect(await client.get('job')).toBeNull();
      // Released even when the function throws.
      await expect(
        client.withLock(
          'job',
          async () => {
            throw new Error('boom');
          },
          { ttlSeconds: 3 },
        ),
      ).rejects.toThrow('boom');
      expect(await client.get('job')).toBeNull();
    });
  });
}

describe('lock metrics, scope and availability', () => {
  it('counts acquired, contended and expired locks and the locks held', async () => {
    const origin = await originFor();
    try {
      const ns = fresh('lockmetrics');
      const a = restLock(origin.url, ns, 'a');
      const b = restLock(origin.url, ns, 'b');
      const grantA = (await (await a.acquire('ttl=30')).json()) as Grant;
      expect((await a.acquire('ttl=30&wait=0.2')).status).toBe(409);
      await b.acquire('ttl=1');
      let samples = await scrape(origin.url);
      expect(value(samples, 'strata_lock_acquired_total')).toBe(2);
      expect(value(samples, 'strata_lock_contended_total')).toBe(1);
      expect(value(samples, 'strata_locks_held')).toBe(2);
      await a.release(grantA.token);
      // b lapses unreleased; the next acquire of b sees it.
      expect((await b.acquire('ttl=30&wait=5')).status).toBe(200);
      samples = await scrape(origin.url);
      expect(value(samples, 'strata_lock_acquired_total')).toBe(3);
      expect(value(samples, 'strata_lock_expired_total')).toBe(1);
      expect(value(samples, 'strata_locks_held')).toBe(1);
    } finally {
      await origin.close();
    }
  });

  it('needs the cache:lock scope in the lock’s namespace', async () => {
    const issuer = hs256Issuer();
    const origin = await originFor(issuer.env);
    try {
      const ns = fresh('lockauth');
      const bearer = async (scope: string[], nsGrant = [ns]) => ({
        Authorization: `Bearer ${await issuer.sign({ scope, ns: nsGrant })}`,
      });
      const anonymous = await restLock(origin.url, ns, 'x').acquire('ttl=5');
      expect(anonymous.status).toBe(401);
      const noScope = await restLock(origin.url, ns, 'x', await bearer(['cache:read', 'cache:write'])).acquire('ttl=5');
      expect(noScope.status).toBe(403);
      expect(await errorCode(noScope)).toBe('AUTH_002');
      const otherNs = await restLock(origin.url, ns, 'x', await bearer(['cache:lock'], ['elsewhere'])).get();
      expect(otherNs.status).toBe(403);
      const allowed = await restLock(origin.url, ns, 'x', await bearer(['cache:lock'])).acquire('ttl=5');
      expect(allowed.status).toBe(200);
    } finally {
      await origin.close();
      await issuer.close();
    }
  });

  it('answers CACHE_005 while the store is unavailable, 503 once the breaker is open, never from the fallback tier', async () => {
    // A port nobody listens on: every Redis call fails, and cache writes fall back to the local tier.
    const origin = await originFor({
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_CALL_TIMEOUT_MS: '200',
      BREAKER_MIN_REQUESTS: '2',
      BREAKER_RECOVERY_INTERVAL_MS: '0',
    });
    try {
      const ns = fresh('lockdown');
      const write = await fetch(`${origin.url}/api/v1/cache/${ns}/k`, { method: 'PUT', body: 'v' });
      expect(write.status).toBe(200);
      expect(write.headers.get(headers.degraded)).toBe('1');
      const lock = restLock(origin.url, ns, 'x');
      for (const res of [await lock.acquire('ttl=5'), await lock.get(), await lock.release(123)]) {
        expect([503, 504]).toContain(res.status);
        expect(await errorCode(res)).toBe('CACHE_005');
      }
      await eventually('the breaker to open', () => origin.store.health().breaker === 'open');
      const res = await lock.acquire('ttl=5');
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; details: { breaker: string } } };
      expect(body.error.code).toBe('CACHE_005');
      expect(body.error.details.breaker).toBe('open');
    } finally {
      await origin.close();
    }
  });
});
