import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { redisStore } from '../../origin/store/redis.ts';
import { redisClusterStore } from '../../origin/store/redis-cluster.ts';
import {
  namespaceVersionKeys,
  type RedisReclaimer,
  reclaimConnectionName,
  redisNamespaceVersions,
  startRedisReclaimer,
} from '../../origin/store/redis-namespaces.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { eventually } from '../support/wait.ts';

const unique = (prefix: string) => `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const entry = { value: new TextEncoder().encode('x'), contentType: 'text/plain', ttlMs: 300_000, tags: [] };

/**
 * The background reclaimer on the Redis every test file shares: it walks a
 * namespace only for a flush no replica has reclaimed yet, touches nothing
 * but that namespace's entries older than its version, and keeps off the
 * store's own connection (a reclaimer that walked every namespace ever
 * flushed on each origin start, on the store's auto-pipelined connection,
 * took traced reads of other tests out of their trace).
 */
describe('namespace reclaimer on a shared Redis', () => {
  // A logical database of its own on the shared server: a walk is a SCAN of the whole keyspace at a bounded
  // rate, so the keys other test files leave behind (a warm test loads 100,000) would set how long it takes.
  const url = `${inject('redisUrl')}/9`;
  const store = redisStore({ url, redis: { connectionName: 'test-store' } });
  const observer = new Redis(url);
  const versions = redisNamespaceVersions(store.client);
  const running: RedisReclaimer[] = [];
  const start = (floors: ReadonlyMap<string, number>, callsPerSecond = 1_000) => {
    const r = startRedisReclaimer({ client: store.client, floors: () => floors, callsPerSecond, idleMs: 20 });
    running.push(r);
    return r;
  };
  const keysOf = async (namespace: string) => (await observer.keys(`strata:e:${namespace}:*`)).sort();
  const connections = async () =>
    ((await observer.client('LIST')) as string)
      .split('\n')
      .filter(Boolean)
      .map((line) => Object.fromEntries(line.split(' ').map((f) => f.split('=', 2) as [string, string])));

  beforeAll(async () => {
    await store.ping();
  });
  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop();
  });
  afterAll(async () => {
    await store.close();
    observer.disconnect();
  });

  it('unlinks only the flushed namespace’s entries older than its version; other namespaces and newer entries stay', async () => {
    const ns = unique('rc');
    const neighbour = `${ns}x`; // its keys share the flushed namespace's key prefix up to the separator
    for (let i = 0; i < 20; i++) {
      await store.set(ns, `old${i}`, entry);
      await store.set(neighbour, `n${i}`, entry);
    }
    const flushed = await versions.bump(ns, 'test', 0);
    await store.set(ns, 'new', entry);
    const reclaimer = start(new Map([[ns, flushed.version]]));
    await reclaimer.idle();

    expect(reclaimer.reclaimed).toBe(20);
    expect(await keysOf(ns)).toEqual([`strata:e:${ns}:new`]);
    expect(await keysOf(neighbour)).toHaveLength(20);
    expect(Number(await observer.hget(namespaceVersionKeys.reclaimed, ns))).toBe(flushed.version);
    expect(await observer.exists(namespaceVersionKeys.reclaiming(ns))).toBe(0);
  });

  it('a flush already reclaimed is not walked again by another replica or after a restart, and an idle round makes no call', async () => {
    const ns = unique('rc');
    await store.set(ns, 'old', entry);
    const flushed = await versions.bump(ns, 'test', 0);
    const floors = new Map([[ns, flushed.version]]);
    const first = start(floors);
    await first.idle();
    expect(first.reclaimed).toBe(1);
    await store.set(ns, 'after', entry);

    const second = start(floors);
    await second.idle();
    // One look at the shared record of reclaimed versions, no SCAN, nothing unlinked.
    expect(second.calls).toBe(1);
    expect(second.reclaimed).toBe(0);
    await second.idle();
    await second.idle();
    expect(second.calls).toBe(1);
    expect(await keysOf(ns)).toEqual([`strata:e:${ns}:after`]);
  });

  it('works on a connection of its own, closed once idle; the store’s connection carries no reclaim call', async () => {
    const ns = unique('rc');
    for (let i = 0; i < 40; i++) await store.set(ns, `old${i}`, entry);
    const flushed = await versions.bump(ns, 'test', 0);
    await store.client.ping();
    // 20 calls a second: the walk lasts a couple of seconds, long enough to see its connection.
    const reclaimer = start(new Map([[ns, flushed.version]]), 20);
    await eventually(
      'the reclaimer’s connection',
      async () => (await connections()).some((c) => c.name === reclaimConnectionName),
      5_000,
    );
    await reclaimer.idle();
    expect(reclaimer.reclaimed).toBe(40);
    const after = await connections();
    expect(after.some((c) => c.name === reclaimConnectionName)).toBe(false);
    // The last command on the store's connection is still the test's own PING.
    expect(after.find((c) => c.name === 'test-store')?.cmd).toBe('ping');
  });
});

describe('namespace reclaimer with its store down', () => {
  it('stops (and so lets the origin close) while waiting for a connection that never comes', async () => {
    // A port nothing listens on: taken from the OS, then freed.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // As the store's client: connecting at once and retrying for ever.
    const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    const errors: unknown[] = [];
    const reclaimer = startRedisReclaimer({
      client,
      floors: () => new Map([['down', 1]]),
      callsPerSecond: 1_000,
      onError: (error) => errors.push(error),
    });
    const stopped = await Promise.race([
      reclaimer.stop().then(() => 'stopped'),
      new Promise((resolve) => setTimeout(() => resolve('still waiting'), 15_000)),
    ]);
    expect(stopped).toBe('stopped');
    expect(reclaimer.calls).toBe(0);
    expect(errors).toEqual([]);
    client.disconnect();
  });
});

describe('namespace reclaimer on Redis Cluster', () => {
  let cluster: RunningRedisCluster;
  let store: ReturnType<typeof redisClusterStore>;
  beforeAll(async () => {
    cluster = await startRedisCluster({ dir: join(inject('serversDir'), `cluster-${process.pid}-reclaim`) });
    store = redisClusterStore({ nodes: cluster.env.REDIS_CLUSTER_NODES!.split(',') });
    await store.ping();
  });
  afterAll(async () => {
    await store?.close();
    await cluster?.stop();
  });

  it('walks every master on a connection of its own and unlinks only the flushed namespace’s older entries', async () => {
    const ns = unique('rc');
    const neighbour = `${ns}x`;
    // 60 keys land in many slots, so on every master.
    for (let i = 0; i < 60; i++) {
      await store.set(ns, `old${i}`, entry);
      await store.set(neighbour, `n${i}`, entry);
    }
    const flushed = await redisNamespaceVersions(store.client).bump(ns, 'test', 0);
    await store.set(ns, 'new', entry);
    const reclaimer = startRedisReclaimer({
      client: store.client,
      floors: () => new Map([[ns, flushed.version]]),
      callsPerSecond: 1_000,
      idleMs: 20,
    });
    try {
      await reclaimer.idle();
      expect(reclaimer.reclaimed).toBe(60);
    } finally {
      await reclaimer.stop();
    }
    const keysOf = async (namespace: string) =>
      (await Promise.all(store.client.nodes('master').map((n) => n.keys(`strata:e:${namespace}:*`)))).flat().sort();
    expect(await keysOf(ns)).toEqual([`strata:e:${ns}:new`]);
    expect(await keysOf(neighbour)).toHaveLength(60);
  });
});
