import { Code } from '@connectrpc/connect';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CacheClient, CacheClientError, createCacheClient, text } from '../../client/index.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { type GrpcJsClient, grpcJsClient } from '../support/grpc-clients.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The entry lifecycle over gRPC on real Redis: grace windows on Set and
 * BatchSet (RFC 5861) answered as stale with a reason and an age, soft purge,
 * refresh leases (a lost lease is FAILED_PRECONDITION with CACHE_006), strong
 * reads, and the typed client's `getOrSet`, each checked against the REST API
 * on the same keys.
 */
describe('entry lifecycle over gRPC (real Redis)', () => {
  let origin: RunningOrigin;
  let shortLeases: RunningOrigin;
  let web: CacheClient;
  let gjs: GrpcJsClient;
  const ns = `grpclife${Date.now().toString(36)}`;

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: inject('redisUrl'), LEASE_TTL_MS: '5000' });
    shortLeases = await originFor({ REDIS_URL: inject('redisUrl'), LEASE_TTL_MS: '300' });
    web = createCacheClient({ baseUrl: origin.url, namespace: ns, timeoutMs: 10_000, breaker: false });
    gjs = grpcJsClient(origin.port);
  });
  afterAll(async () => {
    gjs?.close();
    await shortLeases?.close();
    await origin?.close();
  });

  const rest = (key: string, headers: Record<string, string> = {}) =>
    fetch(`${origin.url}/api/v1/cache/${ns}/${encodeURIComponent(key)}`, { headers });
  const refusal = async (call: Promise<unknown>) => {
    const error = await call.then(
      () => expect.fail('the call succeeded'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CacheClientError);
    return error as CacheClientError;
  };

  it('Set with grace: past its TTL a Get answers the value stale (revalidating) with its age and windows, as REST does', async () => {
    await web.set('swr', 'old', { ttlSeconds: 1, staleWhileRevalidateSeconds: 60, staleIfErrorSeconds: 120 });
    const fresh = await web.get('swr');
    expect(fresh).toMatchObject({
      stale: false,
      staleReason: '',
      staleWhileRevalidateSeconds: 60,
      staleIfErrorSeconds: 120,
    });
    const stale = await eventually('the entry to go stale', async () => {
      const read = await web.get('swr');
      return read?.stale ? read : null;
    });
    expect(text(stale)).toBe('old');
    expect(stale.staleReason).toBe('revalidating');
    expect(stale.ageSeconds).toBeGreaterThanOrEqual(1);
    const res = await rest('swr');
    expect(res.headers.get('X-Cache')).toBe('STALE');
    expect(res.headers.get('X-Cache-Stale-Reason')).toBe('revalidating');
    expect(Number(res.headers.get('Age'))).toBeGreaterThanOrEqual(stale.ageSeconds);
    // A strong read never answers stale: a miss instead, on gRPC as with REST's `Cache-Control: no-cache`.
    expect(await web.get('swr', { strong: true })).toBeNull();
    expect((await rest('swr', { 'Cache-Control': 'no-cache' })).status).toBe(404);
  });

  it('BatchSet with grace keeps the windows on every entry', async () => {
    await web.setMany({ 'b:1': 'one', 'b:2': 'two' }, { ttlSeconds: 30, staleWhileRevalidateSeconds: 15 });
    for (const key of ['b:1', 'b:2']) {
      expect(await web.get(key)).toMatchObject({ staleWhileRevalidateSeconds: 15, staleIfErrorSeconds: 0 });
      expect((await rest(key)).headers.get('Cache-Control')).toContain('stale-while-revalidate=15');
    }
  });

  it('a soft Purge marks entries stale (soft-purge) and removes those without grace; a hard one removes all', async () => {
    await web.set('soft:graced', 'kept', { ttlSeconds: 300, staleWhileRevalidateSeconds: 300, tags: ['sp'] });
    await web.set('soft:bare', 'dropped', { ttlSeconds: 300, tags: ['sp'] });
    const purge = await web.purge({ tags: ['sp'], soft: true });
    expect(purge.purgedCount).toBe(2);
    const read = await web.get('soft:graced');
    expect(read).toMatchObject({ stale: true, staleReason: 'soft-purge' });
    expect(text(read!)).toBe('kept');
    expect(await web.get('soft:bare')).toBeNull();
    expect((await rest('soft:graced')).headers.get('X-Cache-Stale-Reason')).toBe('soft-purge');
    // A soft-purged entry is refreshed under one lease like any stale one.
    const first = await web.read('soft:graced', { lease: true });
    expect(first.lease).toBeTruthy();
    expect((await web.read('soft:graced', { lease: true })).lease).toBeUndefined();
    await web.set('soft:graced', 'refreshed', { ttlSeconds: 300, lease: first.lease! });
    expect(await web.get('soft:graced')).toMatchObject({ stale: false, staleReason: '' });
    await web.purge({ keys: ['soft:graced'] });
    expect(await web.get('soft:graced')).toBeNull();
  });

  it('BatchGet answers each entry with its lifecycle as Get does: stale and why, age, grace windows, write time', async () => {
    await web.set('bg:fresh', 'f', { ttlSeconds: 300, staleWhileRevalidateSeconds: 60, staleIfErrorSeconds: 120 });
    await web.set('bg:expiring', 'e', { ttlSeconds: 1, staleWhileRevalidateSeconds: 60 });
    await web.set('bg:soft', 's', { ttlSeconds: 300, staleWhileRevalidateSeconds: 300, tags: ['bgsp'] });
    await web.purge({ tags: ['bgsp'], soft: true });
    const keys = ['bg:fresh', 'bg:expiring', 'bg:soft', 'bg:absent'];
    const batch = await eventually('bg:expiring to go stale in a batch', async () => {
      const read = await web.getMany(keys);
      return read.values.get('bg:expiring')?.stale ? read : null;
    });
    expect(batch.missingKeys).toEqual(['bg:absent']);
    expect(batch.values.get('bg:fresh')).toMatchObject({
      stale: false,
      staleReason: '',
      staleWhileRevalidateSeconds: 60,
      staleIfErrorSeconds: 120,
    });
    expect(batch.values.get('bg:expiring')).toMatchObject({ stale: true, staleReason: 'revalidating' });
    expect(batch.values.get('bg:expiring')!.ageSeconds).toBeGreaterThanOrEqual(1);
    expect(batch.values.get('bg:soft')).toMatchObject({
      stale: true,
      staleReason: 'soft-purge',
      staleWhileRevalidateSeconds: 300,
    });
    // The same fields a single Get answers for each key.
    for (const key of ['bg:fresh', 'bg:expiring', 'bg:soft']) {
      const one = await web.get(key);
      const fromBatch = batch.values.get(key)!;
      for (const field of [
        'stale',
        'staleReason',
        'staleWhileRevalidateSeconds',
        'staleIfErrorSeconds',
        'version',
      ] as const)
        expect(fromBatch[field], `${key} ${field}`).toEqual(one![field]);
      expect(one!.ageSeconds).toBeGreaterThanOrEqual(fromBatch.ageSeconds);
    }
    // On the wire (plain grpc-js), with the write time beside the age.
    const before = Date.now();
    const { message } = await gjs.call<{
      entries: Record<string, { stale: boolean; staleReason: string; ageSeconds: number; createdAtMs: number }>;
    }>('BatchGet', { namespace: ns, keys: ['bg:soft', 'bg:fresh'] });
    const after = Date.now();
    expect(message.entries['bg:soft']).toMatchObject({ stale: true, staleReason: 'soft-purge' });
    const fresh = message.entries['bg:fresh']!;
    expect(fresh).toMatchObject({ stale: false, staleReason: '' });
    expect(fresh.createdAtMs).toBeGreaterThan(0);
    expect(fresh.createdAtMs).toBeLessThanOrEqual(before);
    expect(fresh.ageSeconds).toBeGreaterThanOrEqual(Math.floor((before - fresh.createdAtMs) / 1000));
    expect(fresh.ageSeconds).toBeLessThanOrEqual(Math.floor((after - fresh.createdAtMs) / 1000));
  });

  it('a miss hands one caller the lease; its Set completes the refresh, and the spent token is FAILED_PRECONDITION CACHE_006', async () => {
    expect((await web.read('cold')).lease).toBeUndefined();
    const first = await web.read('cold', { lease: true });
    expect(first.entry).toBeNull();
    expect(first.lease).toBeTruthy();
    expect((await web.read('cold', { lease: true })).lease).toBeUndefined();
    await web.set('cold', 'loaded', { lease: first.lease! });
    expect(text((await web.get('cold'))!)).toBe('loaded');
    const spent = await refusal(web.set('cold', 'late', { lease: first.lease! }));
    expect(spent.code).toBe(Code.FailedPrecondition);
    expect(spent.errorCode).toBe('CACHE_006');
    expect(text((await web.get('cold'))!)).toBe('loaded');
  });

  it('a lease write after a newer write is refused over plain gRPC (grpc-js) with the code in the trailer', async () => {
    const { message } = await gjs.call<{ lease: string; found: boolean }>('Get', {
      namespace: ns,
      key: 'raced',
      lease: true,
    });
    expect(message.found).toBe(false);
    expect(message.lease).not.toBe('');
    await web.set('raced', 'newer');
    const error = (await gjs
      .call('Set', { namespace: ns, key: 'raced', value: Buffer.from('stale set'), lease: message.lease })
      .then(
        () => expect.fail('the stale set succeeded'),
        (e: unknown) => e,
      )) as grpc.ServiceError;
    expect(error.code).toBe(9); // FAILED_PRECONDITION
    expect(error.metadata.get('x-cache-error-code')).toEqual(['CACHE_006']);
    expect(text((await web.get('raced'))!)).toBe('newer');
  });

  it('an abandoned lease expires: the next caller takes it and the old holder is refused', async () => {
    const short = createCacheClient({ baseUrl: shortLeases.url, namespace: ns, breaker: false });
    const abandoned = (await short.read('abandoned', { lease: true })).lease;
    expect(abandoned).toBeTruthy();
    const next = await eventually(
      'the lease to lapse',
      async () => (await short.read('abandoned', { lease: true })).lease,
    );
    expect(next).not.toBe(abandoned);
    expect((await refusal(short.set('abandoned', 'late', { lease: abandoned! }))).errorCode).toBe('CACHE_006');
    await short.set('abandoned', 'fresh', { lease: next });
    expect(text((await short.get('abandoned'))!)).toBe('fresh');
  });

  it('bad lifecycle input is INVALID_ARGUMENT CACHE_004', async () => {
    const badLease = await refusal(web.set('bad', 'v', { lease: 'not a token!' }));
    expect([badLease.code, badLease.errorCode]).toEqual([Code.InvalidArgument, 'CACHE_004']);
    const badGrace = await refusal(web.set('bad', 'v', { staleWhileRevalidateSeconds: 31_536_001 }));
    expect([badGrace.code, badGrace.errorCode]).toEqual([Code.InvalidArgument, 'CACHE_004']);
    const badWait = await refusal(web.read('bad', { waitSeconds: -1 }));
    expect([badWait.code, badWait.errorCode]).toEqual([Code.InvalidArgument, 'CACHE_004']);
  });

  it('getOrSet: 40 concurrent callers of a missing key load it once and all get its value', async () => {
    let loads = 0;
    const loader = async () => {
      loads += 1;
      await new Promise((r) => setTimeout(r, 200));
      return 'computed';
    };
    const clients = Array.from({ length: 8 }, () =>
      createCacheClient({ baseUrl: origin.url, namespace: ns, breaker: false }),
    );
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => clients[i % clients.length]!.getOrSet('hot', loader, { ttlSeconds: 60 })),
    );
    expect(loads).toBe(1);
    expect(results.filter((r) => r.loaded)).toHaveLength(1);
    for (const r of results) expect(new TextDecoder().decode(r.value)).toBe('computed');
    expect((await rest('hot')).headers.get('Content-Type')).toBe('text/plain; charset=utf-8');
  });
});
