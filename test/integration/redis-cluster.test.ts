import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LateWriteError, type RedisClusterStore, redisClusterStore } from '../../origin/store/redis-cluster.ts';
import type { EntryInput } from '../../origin/store/store.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';

let cluster: RunningRedisCluster;
const seeds = () => cluster.env.REDIS_CLUSTER_NODES!.split(',');

beforeAll(async () => {
  cluster = await startRedisCluster({ dir: join(inject('serversDir'), `cluster-${process.pid}-conformance`) });
});
afterAll(async () => {
  await cluster?.stop();
});

/** `cmdstat_<command>` calls per master, from INFO commandstats (no MONITOR needed). */
async function callsPerMaster(command: string): Promise<Map<number, number>> {
  const masters = (await cluster.nodes()).filter((n) => n.role === 'master' && n.alive);
  const calls = new Map<number, number>();
  for (const master of masters) {
    const conn = new Redis({ port: master.port, host: '127.0.0.1', lazyConnect: true });
    await conn.connect();
    const info = await conn.info('commandstats');
    conn.disconnect();
    const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
    calls.set(master.port, Number(match?.[1] ?? 0));
  }
  return calls;
}

const input = (value: string): EntryInput => ({
  value: new TextEncoder().encode(value),
  contentType: 'text/plain',
  ttlMs: 60_000,
  tags: [],
});

describe('Redis Cluster batches', () => {
  let store: RedisClusterStore;
  beforeAll(async () => {
    store = redisClusterStore({ nodes: seeds() });
    await store.ping();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('a batch of 1,000 keys spanning all three masters goes out as one pipeline per master', async () => {
    const ns = `batch-${Date.now().toString(36)}`;
    const entries = new Map<string, EntryInput>();
    for (let i = 0; i < 1000; i++) entries.set(`k${i}`, input(`v${i}`));

    const setTrips = store.stats.roundTrips;
    const stored = await store.setMany(ns, entries);
    expect(stored.size).toBe(1000);
    expect(store.stats.roundTrips - setTrips).toBe(3);

    const before = await callsPerMaster('hmget');
    const getTrips = store.stats.roundTrips;
    const found = await store.getMany(ns, [...entries.keys()]);
    const after = await callsPerMaster('hmget');

    expect(found.size).toBe(1000);
    for (const [key, entry] of found) expect(new TextDecoder().decode(entry.value)).toBe(`v${key.slice(1)}`);
    expect(store.stats.roundTrips - getTrips).toBe(3);
    // The server side agrees: 1,000 HMGETs in all, and every master served part of the batch.
    const deltas = [...after].map(([port, calls]) => calls - (before.get(port) ?? 0));
    expect(deltas).toHaveLength(3);
    expect(deltas.reduce((a, b) => a + b, 0)).toBe(1000);
    for (const delta of deltas) expect(delta).toBeGreaterThan(0);
  });

  it('keys sharing a {hash tag} land in one slot and one pipeline', async () => {
    const ns = `tag-${Date.now().toString(36)}`;
    const entries = new Map<string, EntryInput>();
    // The hash tag is the first {...} of the whole Redis key, i.e. inside the key after the namespace.
    for (let i = 0; i < 50; i++) entries.set(`{user:7}:field${i}`, input(`f${i}`));
    await store.setMany(ns, entries);
    const trips = store.stats.roundTrips;
    const found = await store.getMany(ns, [...entries.keys()]);
    expect(found.size).toBe(50);
    expect(store.stats.roundTrips - trips).toBe(1);
  });

  it('a write that reaches Redis after its deadline is refused by Redis and leaves the key untouched', async () => {
    const ns = `late-${Date.now().toString(36)}`;
    await store.set(ns, 'k', input('kept'));
    // A deadline already past stands for a retry that arrives after the caller gave up.
    const late = redisClusterStore({ nodes: seeds(), writeDeadlineMs: -60_000 });
    try {
      await expect(late.set(ns, 'k', input('late'))).rejects.toBeInstanceOf(LateWriteError);
      await expect(late.delete(ns, 'k')).rejects.toBeInstanceOf(LateWriteError);
    } finally {
      await late.close();
    }
    expect(new TextDecoder().decode((await store.get(ns, 'k'))!.value)).toBe('kept');
  });

  it('entries expire in Redis itself (PEXPIRE), not only in the reader', async () => {
    const ns = `px-${Date.now().toString(36)}`;
    await store.set(ns, 'short', { ...input('x'), ttlMs: 5_000 });
    const pttl = await store.client.pttl(`strata:e:${ns}:short`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(5_000);
  });
});

describe('Redis Cluster with a password', () => {
  /** Runs one command on every node directly. */
  async function onEveryNode(password: string | undefined, ...command: string[]): Promise<void> {
    for (const port of cluster.ports) {
      const conn = new Redis({ port, host: '127.0.0.1', password, lazyConnect: true });
      await conn.connect();
      await conn.call(command[0]!, ...command.slice(1));
      conn.disconnect();
    }
  }

  afterAll(async () => {
    await onEveryNode('s3cret', 'CONFIG', 'SET', 'requirepass', '');
  });

  it('authenticates to every node with REDIS_PASSWORD, and is refused without it', async () => {
    await onEveryNode(undefined, 'CONFIG', 'SET', 'masterauth', 's3cret');
    await onEveryNode(undefined, 'CONFIG', 'SET', 'requirepass', 's3cret');
    const ns = `auth-${Date.now().toString(36)}`;
    const entries = new Map<string, EntryInput>(Array.from({ length: 30 }, (_, i) => [`a${i}`, input(`v${i}`)]));
    const authed = redisClusterStore({ nodes: seeds(), password: 's3cret' });
    try {
      await authed.setMany(ns, entries);
      expect((await authed.getMany(ns, [...entries.keys()])).size).toBe(30);
    } finally {
      await authed.close();
    }
    // No reconnect loop: without the password the cluster never becomes ready, and queued commands must fail.
    const anonymous = redisClusterStore({ nodes: seeds(), cluster: { clusterRetryStrategy: () => null } });
    try {
      await expect(anonymous.get(ns, 'a0')).rejects.toThrow();
    } finally {
      await anonymous.close();
    }
  });
});
