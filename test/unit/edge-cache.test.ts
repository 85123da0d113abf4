import { describe, expect, it } from 'vitest';
import { EdgeCache, type OriginRead } from '../../edge/core/edge-cache.ts';
import { Lease } from '../../edge/core/lease.ts';
import { memoryTier } from '../../edge/core/memory-tier.ts';
import { deferred, originRead } from '../support/fixtures.ts';

const purgeOf = (key: string, version: number, extra: { tags?: string[]; prefix?: string | null } = {}) => ({
  type: 'purge' as const,
  position: 'p',
  namespace: 'ns',
  keys: extra.tags || extra.prefix ? [] : [key],
  tags: extra.tags ?? [],
  prefix: extra.prefix ?? null,
  version,
  action: 'delete' as const,
  ts: 0,
});

describe('edge cache', () => {
  it('coalesces 1,000 concurrent misses of one key into one origin load', async () => {
    let loads = 0;
    const gate = deferred<OriginRead | null>();
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20 }),
      maxTtlMs: 5_000,
      load: async () => {
        loads++;
        return await gate.promise;
      },
    });
    const reads = Array.from({ length: 1_000 }, () => cache.read('ns', 'cold'));
    gate.resolve(originRead('v', 1));
    const results = await Promise.all(reads);
    expect(loads).toBe(1);
    expect(results.every((r) => r.kind === 'fill')).toBe(true);
    expect((await cache.read('ns', 'cold')).kind).toBe('hit');
  });

  it('a failed load reaches every joined caller and the next read tries again', async () => {
    let loads = 0;
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20 }),
      maxTtlMs: 5_000,
      load: async () => {
        loads++;
        if (loads === 1) throw new Error('origin down');
        return originRead('ok', 1);
      },
    });
    const results = await Promise.allSettled([cache.read('ns', 'k'), cache.read('ns', 'k')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((await cache.read('ns', 'k')).kind).toBe('fill');
    expect(loads).toBe(2);
  });

  it('a purge during an in-flight fill prevents the stale value from being stored', async () => {
    const gate = deferred<OriginRead | null>();
    const cache = new EdgeCache({ tier: memoryTier({ maxBytes: 1 << 20 }), maxTtlMs: 5_000, load: () => gate.promise });
    const read = cache.read('ns', 'k');
    cache.apply(purgeOf('k', 20));
    gate.resolve(originRead('old', 10));
    const result = await read;
    expect(result.kind === 'fill' && result.stored).toBe(false);
    expect(cache.tier.get('ns', 'k')).toBeUndefined();
  });

  it('a fill that already saw the purged write is stored', async () => {
    const gate = deferred<OriginRead | null>();
    const cache = new EdgeCache({ tier: memoryTier({ maxBytes: 1 << 20 }), maxTtlMs: 5_000, load: () => gate.promise });
    const read = cache.read('ns', 'k');
    cache.apply(purgeOf('k', 20));
    gate.resolve(originRead('new', 20));
    const result = await read;
    expect(result.kind === 'fill' && result.stored).toBe(true);
  });

  it('tag and prefix purges during a fill also refuse older values', async () => {
    for (const extra of [{ tags: ['t1'] }, { prefix: 'user:' }]) {
      const gate = deferred<OriginRead | null>();
      const cache = new EdgeCache({
        tier: memoryTier({ maxBytes: 1 << 20 }),
        maxTtlMs: 5_000,
        load: () => gate.promise,
      });
      const read = cache.read('ns', 'user:1');
      cache.apply(purgeOf('user:1', 20, extra));
      gate.resolve(originRead('old', 10, { tags: ['t1'] }));
      const result = await read;
      expect(result.kind === 'fill' && result.stored).toBe(false);
    }
  });

  it('a namespace flush drops older copies of that namespace only, and keeps refusing older fills', async () => {
    const answers = new Map<string, OriginRead>();
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20 }),
      maxTtlMs: 5_000,
      load: async (namespace, key) => answers.get(`${namespace}/${key}`) ?? null,
    });
    answers.set('ns/a', originRead('a', 10));
    answers.set('ns/b', originRead('b', 30));
    answers.set('other/a', originRead('x', 10));
    for (const [ns, key] of [
      ['ns', 'a'],
      ['ns', 'b'],
      ['other', 'a'],
    ] as const) {
      expect((await cache.read(ns, key)).kind).toBe('fill');
    }
    const flush = { ...purgeOf('', 20), keys: [], action: 'flush' as const };
    expect(cache.apply(flush)).toBe(1);
    expect(cache.tier.get('ns', 'a')).toBeUndefined();
    expect(cache.tier.get('ns', 'b')?.version).toBe(30);
    expect(cache.tier.get('other', 'a')?.version).toBe(10);
    expect(cache.ledger.floor('ns')).toBe(20);
    // A lagging origin replica still answering the pre-flush version: neither stored nor relayed, long after the flush.
    for (let i = 0; i < 5; i++) cache.apply(purgeOf(`unrelated${i}`, 99));
    expect((await cache.read('ns', 'a')).kind).toBe('miss');
    answers.set('ns/a', originRead('a2', 25));
    const refill = await cache.read('ns', 'a');
    expect(refill.kind === 'fill' && refill.stored).toBe(true);
  });

  it('a flush during an in-flight fill refuses the older value; a later flush never lowers the floor', async () => {
    const gate = deferred<OriginRead | null>();
    const cache = new EdgeCache({ tier: memoryTier({ maxBytes: 1 << 20 }), maxTtlMs: 5_000, load: () => gate.promise });
    const read = cache.read('ns', 'k');
    cache.apply({ ...purgeOf('', 50), keys: [], action: 'flush' });
    cache.apply({ ...purgeOf('', 40), keys: [], action: 'flush' });
    gate.resolve(originRead('old', 45));
    expect((await read).kind).toBe('miss');
    expect(cache.ledger.floor('ns')).toBe(50);
    expect(cache.tier.get('ns', 'k')).toBeUndefined();
  });

  it('a reset drops the tier and refuses fills in flight', async () => {
    const gate = deferred<OriginRead | null>();
    const cache = new EdgeCache({ tier: memoryTier({ maxBytes: 1 << 20 }), maxTtlMs: 5_000, load: () => gate.promise });
    const read = cache.read('ns', 'k');
    cache.tier.set({
      ...originRead('x', 1),
      namespace: 'ns',
      key: 'other',
      expiresAtMs: Date.now() + 1000,
      filledFrom: 'memory',
    });
    cache.apply({ type: 'reset', position: 'p', reason: 'test' });
    gate.resolve(originRead('v', 99));
    const result = await read;
    expect(result.kind === 'fill' && result.stored).toBe(false);
    expect(cache.tier.size).toBe(0);
  });

  it('keeps an entry no longer than the edge TTL cap', async () => {
    let now = 1_000_000;
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20, now: () => now }),
      maxTtlMs: 2_000,
      now: () => now,
      load: async () => originRead('v', 1, { expiresAtMs: now + 3_600_000 }),
    });
    expect((await cache.read('ns', 'k')).kind).toBe('fill');
    now += 1_999;
    expect((await cache.read('ns', 'k')).kind).toBe('hit');
    now += 1;
    expect((await cache.read('ns', 'k')).kind).toBe('fill');
  });

  it('a degraded origin answer is relayed but not kept', async () => {
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20 }),
      maxTtlMs: 5_000,
      load: async () => originRead('v', 1, { degraded: true, status: 'STALE', tier: 'origin-local' }),
    });
    const first = await cache.read('ns', 'k');
    expect(first.kind === 'fill' && !first.stored).toBe(true);
    expect((await cache.read('ns', 'k')).kind).toBe('fill');
  });
});

describe('edge cache past its lease', () => {
  /** An edge holding a copy past its TTL but within stale-while-revalidate, whose origin now fails. */
  async function staleCopy(leaseHeld: boolean) {
    let now = 1_000_000;
    let failing = false;
    const confirmation = () => (leaseHeld ? { atMs: now, tailLive: true } : null);
    const lease = new Lease({
      leaseMs: 3_000,
      renewAfterMs: 3_000,
      confirmation,
      renew: async () => {},
      now: () => now,
    });
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20, now: () => now }),
      lease,
      revalidate: async () => {
        throw new Error('origin unreachable');
      },
      maxTtlMs: 600_000,
      now: () => now,
      load: async () => {
        if (failing) throw new Error('origin unreachable');
        return originRead('old', 1, { createdAtMs: now, expiresAtMs: now + 1_000, staleWhileRevalidateMs: 60_000 });
      },
    });
    expect(await cache.read('ns', 'k')).toMatchObject({ kind: 'fill' });
    now += 2_000;
    failing = true;
    return cache;
  }

  it('answers a refresher from a copy within stale-while-revalidate while its lease holds and the origin fails', async () => {
    const cache = await staleCopy(true);
    expect(await cache.read('ns', 'k', undefined, { lease: true, waitSeconds: 0 })).toMatchObject({ kind: 'hit' });
  });

  it('never answers from stale-while-revalidate past its lease: only stale-if-error may, and this writer gave none', async () => {
    const cache = await staleCopy(false);
    await expect(cache.read('ns', 'k', undefined, { lease: true, waitSeconds: 0 })).rejects.toThrow(
      'origin unreachable',
    );
    await expect(cache.read('ns', 'k')).rejects.toThrow();
  });
});
