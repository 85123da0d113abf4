import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { batchGetResponseSchema } from '../../shared/schemas.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The entry lifecycle over real HTTP: an origin on real Redis and a Node
 * edge on its purge stream. Grace windows come from the PUT's
 * `Cache-Control` (RFC 5861), soft purge from `POST /api/v1/purge`, and
 * stale-if-error from an origin that is gone.
 */
describe('entry lifecycle through the edge and the origin', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  const ns = `life${Date.now().toString(36)}`;

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: inject('redisUrl') });
    edge = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '300' });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  const url = (base: string, key: string, query = '') =>
    `${base}/api/v1/cache/${ns}/${encodeURIComponent(key)}${query}`;
  const put = (base: string, key: string, body: string, cacheControl?: string, query = '') =>
    fetch(url(base, key, query), {
      method: 'PUT',
      body,
      headers: { 'Content-Type': 'text/plain', ...(cacheControl ? { 'Cache-Control': cacheControl } : {}) },
    });
  const get = async (base: string, key: string) => {
    const res = await fetch(url(base, key));
    return { res, text: await res.text() };
  };

  it('within stale-while-revalidate a read answers STALE with its reason, an honest Age and what remains', async () => {
    const written = await put(edge.url, 'swr', 'v1', 'max-age=1, stale-while-revalidate=60, stale-if-error=600');
    expect(written.status).toBe(200);
    const fresh = await get(edge.url, 'swr');
    expect(fresh.res.headers.get('X-Cache')).toBe('HIT');
    const control = fresh.res.headers.get('Cache-Control') ?? '';
    expect(control).toMatch(/^max-age=\d+, stale-while-revalidate=60, stale-if-error=600$/);
    const remaining = Number(/max-age=(\d+)/.exec(control)?.[1]) - Number(fresh.res.headers.get('Age'));
    expect(remaining).toBeLessThanOrEqual(1);
    const atEdge = await eventually('the edge to answer STALE', async () => {
      const read = await get(edge.url, 'swr');
      return read.res.headers.get('X-Cache') === 'STALE' ? read : null;
    });
    expect(atEdge.text).toBe('v1');
    expect(atEdge.res.headers.get('X-Cache-Stale-Reason')).toBe('revalidating');
    expect(atEdge.res.headers.get('X-Cache-Tier')).toBe('edge');
    expect(Number(atEdge.res.headers.get('Age'))).toBeGreaterThanOrEqual(1);
    // Stale: max-age (the 1 s lifetime) is at most Age; the windows stay.
    expect(atEdge.res.headers.get('Cache-Control')).toBe('max-age=1, stale-while-revalidate=60, stale-if-error=600');
    const atOrigin = await get(origin.url, 'swr');
    expect(atOrigin.res.headers.get('X-Cache')).toBe('STALE');
    expect(atOrigin.res.headers.get('X-Cache-Stale-Reason')).toBe('revalidating');
    expect(atOrigin.text).toBe('v1');
  });

  it('a fresh read’s Cache-Control says how long it stays fresh: max-age − Age', async () => {
    await put(edge.url, 'cc', 'v', undefined, '?ttl=120');
    const read = await get(edge.url, 'cc');
    const maxAge = Number(/^max-age=(\d+)$/.exec(read.res.headers.get('Cache-Control') ?? '')?.[1]);
    const remaining = maxAge - Number(read.res.headers.get('Age'));
    expect(remaining).toBeGreaterThan(100);
    expect(remaining).toBeLessThanOrEqual(120);
  });

  it('ttl and a different max-age on one write are refused with 400 CACHE_004, at the edge and at the origin', async () => {
    for (const base of [edge.url, origin.url]) {
      const res = await put(base, 'both', 'v', 'max-age=60', '?ttl=30');
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CACHE_004');
    }
    expect((await put(edge.url, 'same', 'v', 'max-age=30', '?ttl=30')).status).toBe(200);
    const bad = await put(edge.url, 'bad', 'v', 'stale-if-error=soon');
    expect(bad.status).toBe(400);
  });

  it('a batch set with an empty content_type stores the default one for its encoding, not an empty one', async () => {
    const res = await fetch(`${edge.url}/api/v1/cache/${ns}/batch/set`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ entries: { untyped: 'x' }, content_type: '' }),
    });
    expect(res.status).toBe(200);
    for (const base of [origin.url, edge.url]) {
      const read = await get(base, 'untyped');
      expect(read.res.headers.get('Content-Type')).toBe('text/plain; charset=utf-8');
    }
  });

  it('a batch set takes grace windows from its body, and its entries are served STALE after the TTL', async () => {
    const res = await fetch(`${edge.url}/api/v1/cache/${ns}/batch/set`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ entries: { b1: 'one', b2: 'two' }, ttl: 1, stale_while_revalidate: 60 }),
    });
    expect(res.status).toBe(200);
    const stale = await eventually('the batch entry to be stale', async () => {
      const read = await get(edge.url, 'b1');
      return read.res.headers.get('X-Cache') === 'STALE' ? read : null;
    });
    expect(stale.text).toBe('one');
    expect(stale.res.headers.get('Cache-Control')).toBe('max-age=1, stale-while-revalidate=60');
  });

  it('a soft purge makes the edge answer STALE soft-purge, never fresh again, until the key is written', async () => {
    await put(edge.url, 'soft', 'before', 'max-age=300, stale-while-revalidate=300');
    expect((await get(edge.url, 'soft')).res.headers.get('X-Cache')).toBe('HIT');
    const purge = await fetch(`${edge.url}/api/v1/purge`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ namespace: ns, keys: ['soft'], soft: true }),
    });
    expect(purge.status).toBe(200);
    expect(((await purge.json()) as { purged_count: number }).purged_count).toBe(1);
    await eventually('the edge to answer soft-purge', async () => {
      const read = await get(edge.url, 'soft');
      return read.res.headers.get('X-Cache-Stale-Reason') === 'soft-purge';
    });
    for (let i = 0; i < 5; i++) {
      const read = await get(edge.url, 'soft');
      expect(read.text).toBe('before');
      expect(read.res.headers.get('X-Cache')).toBe('STALE');
      expect(read.res.headers.get('X-Cache-Stale-Reason')).toBe('soft-purge');
    }
    await put(edge.url, 'soft', 'after', 'max-age=300');
    const rewritten = await get(edge.url, 'soft');
    expect(rewritten.text).toBe('after');
    expect(rewritten.res.headers.get('X-Cache')).toBe('HIT');
  });

  it('a batch get names each entry served stale with the reason a single read gives, at the origin and the edge', async () => {
    expect((await put(origin.url, 'bfresh', 'f', 'max-age=300')).status).toBe(200);
    expect((await put(origin.url, 'bswr', 's', 'max-age=1, stale-while-revalidate=60')).status).toBe(200);
    expect((await put(origin.url, 'bsoft', 'p', 'max-age=300, stale-while-revalidate=300')).status).toBe(200);
    const purge = await fetch(`${origin.url}/api/v1/purge`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ namespace: ns, keys: ['bsoft'], soft: true }),
    });
    expect(purge.status).toBe(200);
    await eventually('the short-lived entry to be stale', async () => {
      const read = await get(origin.url, 'bswr');
      return read.res.headers.get('X-Cache') === 'STALE';
    });
    const single: Record<string, string | null> = {};
    for (const key of ['bfresh', 'bswr', 'bsoft']) {
      single[key] = (await get(origin.url, key)).res.headers.get('X-Cache-Stale-Reason');
    }
    expect(single).toEqual({ bfresh: null, bswr: 'revalidating', bsoft: 'soft-purge' });
    const batchGet = async (base: string, keys: string[]) => {
      const res = await fetch(`${base}/api/v1/cache/${ns}/batch/get`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ keys }),
      });
      expect(res.status).toBe(200);
      return batchGetResponseSchema.parse(await res.json());
    };
    for (const base of [origin.url, edge.url]) {
      const answer = await batchGet(base, ['bfresh', 'bswr', 'bsoft', 'bmissing']);
      expect(answer.values).toEqual({ bfresh: 'f', bswr: 's', bsoft: 'p' });
      expect(answer.missing_keys).toEqual(['bmissing']);
      expect(answer.stale_reasons).toEqual({ bswr: 'revalidating', bsoft: 'soft-purge' });
      // Every value fresh: no field at all, as before.
      const fresh = await batchGet(base, ['bfresh', 'bmissing']);
      expect(fresh).toEqual({ values: { bfresh: 'f' }, missing_keys: ['bmissing'], encoding: 'utf8' });
    }
  });
});

describe('stale-if-error at the edge with the origin stopped', () => {
  it('answers the copy STALE with reason error within the writer’s stale-if-error window, and 503 without one', async () => {
    const origin = await originFor({ REDIS_URL: inject('redisUrl') });
    const edge = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '300' });
    const ns = `sie${Date.now().toString(36)}`;
    try {
      const at = (key: string) => `${edge.url}/api/v1/cache/${ns}/${key}`;
      for (const [key, cacheControl] of [
        ['kept', 'max-age=1, stale-if-error=600'],
        ['plain', 'max-age=1'],
      ] as const) {
        const res = await fetch(at(key), { method: 'PUT', body: key, headers: { 'Cache-Control': cacheControl } });
        expect(res.status).toBe(200);
        expect((await fetch(at(key))).headers.get('X-Cache')).toBe('HIT');
      }
      await origin.close();
      const stale = await eventually(
        'the edge to answer stale-if-error',
        async () => {
          const res = await fetch(at('kept'));
          return res.headers.get('X-Cache-Stale-Reason') === 'error' ? res : null;
        },
        10_000,
      );
      expect(stale.status).toBe(200);
      expect(await stale.text()).toBe('kept');
      expect(stale.headers.get('X-Cache')).toBe('STALE');
      expect(stale.headers.get('X-Cache-Tier')).toBe('edge');
      const plain = await eventually(
        'the entry without stale-if-error to fail',
        async () => {
          const res = await fetch(at('plain'));
          return res.status === 503 ? res : null;
        },
        10_000,
      );
      expect(((await plain.json()) as { error: { code: string } }).error.code).toBe('CACHE_005');
    } finally {
      await edge.close();
      await origin.close().catch(() => {});
    }
  });
});
