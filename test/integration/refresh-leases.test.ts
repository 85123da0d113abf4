import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { restCache } from '../../client/get-or-set.ts';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

type Envelope = { error: { code: string } };

/**
 * Refresh leases over real HTTP on real Redis (memcache leases, NSDI 2013):
 * one caller per key at a time is told to refresh a missing or stale key,
 * its write completes the refresh, a write under a lost lease is refused,
 * and the others wait (`Prefer: wait`, RFC 7240) or get the stale value.
 */
describe('refresh leases', () => {
  let origin: RunningOrigin;
  let shortLeases: RunningOrigin;
  let a: RunningEdge;
  let b: RunningEdge;
  const ns = `lease${Date.now().toString(36)}`;

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: inject('redisUrl'), LEASE_TTL_MS: '5000' });
    shortLeases = await originFor({ REDIS_URL: inject('redisUrl'), LEASE_TTL_MS: '300' });
    a = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '300' });
    b = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '300' });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await shortLeases?.close();
    await origin?.close();
  });

  const url = (base: string, key: string) => `${base}/api/v1/cache/${ns}/${encodeURIComponent(key)}`;
  // Every read here takes part in refreshing (`Prefer: lease`); a plain read is never handed a lease.
  const get = (base: string, key: string, headers: Record<string, string> = {}) =>
    fetch(url(base, key), { headers: { Prefer: 'lease', ...headers } });
  const put = (base: string, key: string, body: string, headers: Record<string, string> = {}) =>
    fetch(url(base, key), { method: 'PUT', body, headers: { 'Content-Type': 'text/plain', ...headers } });

  it('a full miss gives one caller the lease; its write completes the refresh and the token is then spent', async () => {
    const plain = await fetch(url(origin.url, 'cold'));
    expect(plain.status).toBe(404);
    expect(plain.headers.get('X-Cache-Lease')).toBeNull();
    const first = await get(origin.url, 'cold');
    expect(first.status).toBe(404);
    const lease = first.headers.get('X-Cache-Lease');
    expect(lease).toBeTruthy();
    const second = await get(origin.url, 'cold');
    expect(second.status).toBe(404);
    expect(second.headers.get('X-Cache-Lease')).toBeNull();
    expect((await put(origin.url, 'cold', 'loaded', { 'X-Cache-Lease': lease! })).status).toBe(200);
    const read = await get(origin.url, 'cold');
    expect(await read.text()).toBe('loaded');
    const again = await put(origin.url, 'cold', 'late', { 'X-Cache-Lease': lease! });
    expect(again.status).toBe(412);
    expect(((await again.json()) as Envelope).error.code).toBe('CACHE_006');
    expect(await (await get(origin.url, 'cold')).text()).toBe('loaded');
  });

  it('a lease write after a newer write is refused with 412 CACHE_006 and does not overwrite it', async () => {
    const lease = (await get(a.url, 'raced')).headers.get('X-Cache-Lease');
    expect(lease).toBeTruthy();
    expect((await put(b.url, 'raced', 'newer')).status).toBe(200);
    const stale = await put(a.url, 'raced', 'stale set', { 'X-Cache-Lease': lease! });
    expect(stale.status).toBe(412);
    expect(((await stale.json()) as Envelope).error.code).toBe('CACHE_006');
    expect(await (await get(origin.url, 'raced')).text()).toBe('newer');
  });

  it('a stale entry gives the lease to one reader while every reader gets the stale value', async () => {
    await put(origin.url, 'stale', 'old', { 'Cache-Control': 'max-age=1, stale-while-revalidate=60' });
    const first = await eventually('the entry to go stale with a lease', async () => {
      const res = await get(origin.url, 'stale');
      return res.headers.get('X-Cache') === 'STALE' ? res : null;
    });
    expect(await first.text()).toBe('old');
    const lease = first.headers.get('X-Cache-Lease');
    expect(lease).toBeTruthy();
    const other = await get(origin.url, 'stale');
    expect(other.headers.get('X-Cache')).toBe('STALE');
    expect(other.headers.get('X-Cache-Lease')).toBeNull();
    expect(await other.text()).toBe('old');
    expect(
      (await put(origin.url, 'stale', 'new', { 'X-Cache-Lease': lease!, 'Cache-Control': 'max-age=60' })).status,
    ).toBe(200);
    const fresh = await get(origin.url, 'stale');
    expect(fresh.headers.get('X-Cache')).toBe('HIT');
    expect(await fresh.text()).toBe('new');
  });

  it('an edge holding a stale copy asks the origin for the lease and hands it to one reader', async () => {
    await put(a.url, 'edge-stale', 'old', { 'Cache-Control': 'max-age=1, stale-while-revalidate=60' });
    expect((await fetch(url(a.url, 'edge-stale'))).headers.get('X-Cache')).toBe('HIT');
    // A plain reader gets the stale copy from the edge's tier, without a lease.
    const plain = await eventually('the copy to go stale', async () => {
      const res = await fetch(url(a.url, 'edge-stale'));
      return res.headers.get('X-Cache') === 'STALE' ? res : null;
    });
    expect(plain.headers.get('X-Cache-Tier')).toBe('edge');
    expect(plain.headers.get('X-Cache-Lease')).toBeNull();
    const leased = await get(a.url, 'edge-stale');
    expect(leased.headers.get('X-Cache')).toBe('STALE');
    expect(await leased.text()).toBe('old');
    const lease = leased.headers.get('X-Cache-Lease');
    expect(lease).toBeTruthy();
    const other = await get(b.url, 'edge-stale');
    expect(other.headers.get('X-Cache')).toBe('STALE');
    expect(other.headers.get('X-Cache-Lease')).toBeNull();
    expect((await put(a.url, 'edge-stale', 'new', { 'X-Cache-Lease': lease! })).status).toBe(200);
    expect(await (await get(b.url, 'edge-stale')).text()).toBe('new');
  });

  it('an abandoned lease expires: the next reader gets a new one, and the old token is refused', async () => {
    const abandoned = (await get(shortLeases.url, 'abandoned')).headers.get('X-Cache-Lease');
    expect(abandoned).toBeTruthy();
    const next = await eventually('a new lease after the first expired', async () =>
      (await get(shortLeases.url, 'abandoned')).headers.get('X-Cache-Lease'),
    );
    expect(next).not.toBe(abandoned);
    expect((await put(shortLeases.url, 'abandoned', 'late', { 'X-Cache-Lease': abandoned! })).status).toBe(412);
    expect((await put(shortLeases.url, 'abandoned', 'v', { 'X-Cache-Lease': next })).status).toBe(200);
  });

  it('Prefer: wait on a full miss waits for the lease holder’s write, and answers the miss when none comes', async () => {
    const lease = (await get(origin.url, 'waited')).headers.get('X-Cache-Lease');
    expect(lease).toBeTruthy();
    const waiting = get(b.url, 'waited', { Prefer: 'wait=5' });
    expect((await put(origin.url, 'waited', 'arrived', { 'X-Cache-Lease': lease! })).status).toBe(200);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(await answer.text()).toBe('arrived');
    // Nobody writes this one: the wait (1 s) ends in a miss without a lease, the holder keeps it.
    expect((await get(origin.url, 'never')).headers.get('X-Cache-Lease')).toBeTruthy();
    const started = Date.now();
    const miss = await get(a.url, 'never', { Prefer: 'wait=1' });
    expect(miss.status).toBe(404);
    expect(miss.headers.get('X-Cache-Lease')).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('getOrSet on a stale hit answers the stale value at once and refreshes the key in the background, once', async () => {
    const key = 'stale-refresh';
    const written = await put(origin.url, key, 'old', { 'Cache-Control': 'max-age=1, stale-while-revalidate=60' });
    expect(written.ok).toBe(true);
    await eventually('the entry to go stale', async () => {
      const res = await fetch(url(origin.url, key));
      await res.arrayBuffer();
      return res.headers.get('X-Cache') === 'STALE';
    });
    let loads = 0;
    const loader = async () => {
      loads += 1;
      return 'new';
    };
    const client = restCache({ baseUrl: origin.url, namespace: ns });
    const results = await Promise.all(
      Array.from({ length: 5 }, () => client.getOrSet(key, loader, { ttlSeconds: 60 })),
    );
    expect(results.map((r) => new TextDecoder().decode(r.value))).toEqual(['old', 'old', 'old', 'old', 'old']);
    expect(results.every((r) => !r.loaded)).toBe(true);
    await eventually(
      'the background refresh to land',
      async () => (await (await fetch(url(origin.url, key))).text()) === 'new',
    );
    expect(loads).toBe(1);
  });

  it('stampede: 1,000 reads of one missing key through two edges by 50 clients load the data source exactly once', async () => {
    let loads = 0;
    const loader = async () => {
      loads += 1;
      await new Promise((resolve) => setTimeout(resolve, 200)); // the data source takes 200 ms
      return 'expensive';
    };
    const clients = Array.from({ length: 50 }, (_, i) =>
      restCache({ baseUrl: (i % 2 === 0 ? a : b).url, namespace: ns }),
    );
    const reads = Array.from({ length: 1_000 }, (_, i) =>
      clients[i % clients.length]!.getOrSet('stampede', loader, { ttlSeconds: 60, waitSeconds: 5 }),
    );
    const results = await Promise.all(reads);
    expect(loads).toBe(1);
    expect(results.every((r) => new TextDecoder().decode(r.value) === 'expensive')).toBe(true);
    expect(results.filter((r) => r.loaded)).toHaveLength(1);
  });
});
