import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RedisClusterStore, redisClusterStore } from '../../origin/store/redis-cluster.ts';
import { slotIndexKeys, slotRegistryKey } from '../../origin/store/redis-cluster-key-index.ts';
import { entryKey } from '../../origin/store/redis-codec.ts';
import { redisNamespaceVersions, startRedisReclaimer } from '../../origin/store/redis-namespaces.ts';
import { redisWriteBack } from '../../origin/store/write-back.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { eventually } from '../support/wait.ts';

let cluster: RunningRedisCluster;
beforeAll(async () => {
  cluster = await startRedisCluster({ dir: join(inject('serversDir'), `cluster-${process.pid}-key-index`) });
});
afterAll(async () => {
  await cluster?.stop();
});

const input = (value: string, ttlMs = 60_000) => ({
  value: new TextEncoder().encode(value),
  contentType: 'text/plain',
  ttlMs,
  tags: [],
});

describe('the per-namespace key index on a real Redis Cluster (one pair per hash slot, with a slot registry)', () => {
  let store: RedisClusterStore;
  let counter = 0;
  const fresh = () => `cidx-${process.pid}-${Date.now().toString(36)}-${counter++}`;
  /** Every member of the namespace's index, over the slots its registry names. */
  const indexed = async (namespace: string) => {
    const slots = await store.client.smembers(slotRegistryKey(namespace));
    const members: string[] = [];
    for (const slot of slots)
      members.push(...(await store.client.zrange(slotIndexKeys(namespace, Number(slot))[0], 0, -1)));
    return members.map((k) => k.slice(entryKey(namespace, '').length)).sort();
  };

  beforeAll(async () => {
    store = redisClusterStore({ nodes: cluster.env.REDIS_CLUSTER_NODES!.split(',') });
    await store.ping();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('each entry sits in its own slot’s index, and the registry names exactly the slots written', async () => {
    const ns = fresh();
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    await store.setMany(ns, new Map(keys.map((k) => [k, input(k)])));
    expect(await indexed(ns)).toEqual([...keys].sort());
    const slots = new Set(keys.map((k) => calculateSlot(entryKey(ns, k))));
    expect(slots.size).toBeGreaterThan(30);
    const registered = new Set((await store.client.smembers(slotRegistryKey(ns))).map(Number));
    expect(registered).toEqual(slots);
    for (const k of keys.slice(0, 3)) {
      const own = slotIndexKeys(ns, calculateSlot(entryKey(ns, k)))[0];
      expect(await store.client.zscore(own, entryKey(ns, k))).toBe('0');
    }
    await store.delete(ns, 'k0');
    await store.purge(ns, { keys: ['k1'], tags: [], prefix: null });
    expect(await indexed(ns)).toEqual(keys.slice(2).sort());
  });

  it('a prefix purge reads the index, finds written-back and swapped keys, and leaves other prefixes', async () => {
    const ns = fresh();
    for (let i = 0; i < 10; i++) await store.set(ns, `user:${i}`, input(`${i}`));
    await store.set(ns, 'users', input('s'));
    await store.set(ns, 'order:1', input('o'));
    const now = Date.now();
    const replayed = await redisWriteBack(store.client).setIfNewer(ns, 'user:replayed', {
      ...input('r'),
      version: 1,
      createdAtMs: now,
      expiresAtMs: now + 60_000,
    });
    expect(replayed).toBe(true);
    const swapped = await store.swap!(ns, [
      { key: 'user:cas', expectedVersion: 0, action: { kind: 'set', input: input('c') } },
    ]);
    expect(swapped.kind).toBe('swapped');
    const purged = await store.purge(ns, { keys: [], tags: [], prefix: 'user:' });
    expect(purged.removed).toBe(12);
    expect(await indexed(ns)).toEqual(['order:1', 'users']);
    expect(await store.get(ns, 'users')).not.toBeNull();
    expect(await store.get(ns, 'user:replayed')).toBeNull();
  });

  it('expired members are dropped by later writes to the same slot', async () => {
    const ns = fresh();
    // Hash tags put every key of this test in one slot, so one later write there cleans the rest.
    for (let i = 0; i < 5; i++) await store.set(ns, `{same}short${i}`, input('s', 1));
    await eventually('short entries expired', async () => (await store.get(ns, '{same}short4')) === null);
    await store.set(ns, '{same}long', input('l'));
    expect(await indexed(ns)).toEqual(['{same}long']);
  });

  it('entries of a flushed namespace version leave the index when the reclaimer unlinks them', async () => {
    const ns = fresh();
    const keys = Array.from({ length: 12 }, (_, i) => `old${i}`);
    const written = await store.setMany(ns, new Map(keys.map((k) => [k, input(k)])));
    const floor = Math.max(...[...written.values()].map((e) => e.version)) + 1;
    const flushed = await redisNamespaceVersions(store.client).bump(ns, 'test', floor);
    const reclaimer = startRedisReclaimer({
      client: store.client,
      floors: () => new Map([[ns, flushed.version]]),
      callsPerSecond: 10_000,
      idleMs: 20,
    });
    try {
      await reclaimer.idle();
      expect(reclaimer.reclaimed).toBe(12);
    } finally {
      await reclaimer.stop();
    }
    expect(await indexed(ns)).toEqual([]);
  });

  it('a listing by prefix walks the slot indexes in pages of at most count keys, each key once', async () => {
    const ns = fresh();
    const keys = Array.from({ length: 50 }, (_, i) => `item:${i}`);
    await store.setMany(ns, new Map([...keys, 'other'].map((k) => [k, input(k)])));
    const listed: string[] = [];
    let cursor: string | null = null;
    for (let calls = 0; calls < 1_000; calls++) {
      const page = await store.listKeys!(ns, { match: 'item:*', cursor, count: 7 });
      expect(page.keys.length).toBeLessThanOrEqual(7);
      listed.push(...page.keys.map((k) => k.key));
      cursor = page.cursor;
      if (cursor === null) break;
    }
    expect(cursor).toBeNull();
    expect(listed.length).toBe(new Set(listed).size);
    expect(listed.sort()).toEqual([...keys].sort());
    await expect(store.listKeys!(ns, { match: 'item:*', cursor: '@99999>x', count: 7 })).rejects.toMatchObject({
      code: 'CACHE_004',
    });
  });
});
