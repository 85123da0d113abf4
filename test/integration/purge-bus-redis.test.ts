import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PurgeBusEvent } from '../../origin/purge/bus.ts';
import { RedisStreamPurgeBus } from '../../origin/purge/redis-stream-bus.ts';
import { startRedis } from '../../scripts/services/redis.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { purge, purgeBusConformance } from '../conformance/purge-bus.ts';
import { eventually } from '../support/wait.ts';

let logs = 0;
/** A key of its own per bus: every bus from these factories is a fresh, empty log. */
const freshKey = () => `{conformance-purge-log-${process.pid}-${++logs}}`;

const standalone = new Redis(inject('redisUrl'), { lazyConnect: true });
let cluster: RunningRedisCluster;
let clusterClient: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster({ dir: join(inject('serversDir'), `cluster-${process.pid}-purge-bus`) });
  clusterClient = new Cluster(
    cluster.env.REDIS_CLUSTER_NODES!.split(',').map((n) => {
      const [host, port] = n.split(':');
      return { host: host!, port: Number(port) };
    }),
  );
}, 90_000);
afterAll(async () => {
  standalone.disconnect();
  clusterClient?.disconnect();
  await cluster?.stop();
});

purgeBusConformance(
  'Redis Stream (standalone)',
  ({ retainedEntries }) =>
    RedisStreamPurgeBus.open({ client: standalone, retainedEntries, retentionSeconds: 3600, key: freshKey() }),
  { sharedLog: false },
);

purgeBusConformance(
  'Redis Stream (6-node Cluster)',
  ({ retainedEntries }) =>
    RedisStreamPurgeBus.open({ client: clusterClient, retainedEntries, retentionSeconds: 3600, key: freshKey() }),
  { sharedLog: false },
);

describe('Redis Stream purge log: what only a shared log does', () => {
  const open = (key: string, events = {}) =>
    RedisStreamPurgeBus.open({ client: standalone, retainedEntries: 100, retentionSeconds: 3600, key, events });

  it('two replicas on one log relay every entry, each one their own too, in the same order, and share positions', async () => {
    const key = freshKey();
    const [a, b] = [await open(key), await open(key)];
    try {
      const seenA: PurgeBusEvent[] = [];
      const seenB: PurgeBusEvent[] = [];
      a.subscribe(null, (e) => seenA.push(e));
      b.subscribe(null, (e) => seenB.push(e));
      const published = await Promise.all([
        a.publish(purge('a1')),
        b.publish(purge('b1')),
        a.publish(purge('a2')),
        b.publish(purge('b2')),
      ]);
      await eventually('both replicas to relay four entries', () => seenA.length === 4 && seenB.length === 4);
      expect(seenA.map((e) => e.position)).toEqual(seenB.map((e) => e.position));
      expect(new Set(seenA.map((e) => e.position))).toEqual(new Set(published.map((p) => p.message.position)));
      expect(published.map((p) => p.seq).sort()).toEqual([1, 2, 3, 4]);
      // A position handed out by replica a resumes at replica b without a reset.
      const resumed: PurgeBusEvent[] = [];
      b.subscribe(seenA[1]!.position, (e) => resumed.push(e));
      await eventually('the gap replayed at the other replica', () => resumed.length === 2);
      expect(resumed.map((e) => e.type)).toEqual(['purge', 'purge']);
      expect(resumed.map((e) => e.position)).toEqual(seenA.slice(2).map((e) => e.position));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a wiped log (Redis restarted without persistence) is a new incarnation: every subscriber gets a reset, old positions too', async () => {
    const key = freshKey();
    const bus = await open(key);
    try {
      const before = await bus.publish(purge('k1'));
      const seen: PurgeBusEvent[] = [];
      bus.subscribe(null, (e) => seen.push(e));
      await standalone.del(`${key}:stream`, `${key}:meta`);
      await eventually('a reset at the subscriber', () => seen.some((e) => e.type === 'reset'), 10_000);
      expect(bus.health().position).not.toBe(before.message.position);
      const late: PurgeBusEvent[] = [];
      bus.subscribe(before.message.position, (e) => late.push(e));
      await eventually('a reset for the old position', () => late.length === 1);
      expect(late[0]!.type).toBe('reset');
      const page = await bus.read(before.message.position, 10);
      expect(page.reset?.reason).toMatch(/incarnation/);
    } finally {
      await bus.close();
    }
  });

  it('a malformed entry is skipped and reported, an unknown format version answers reset, unknown fields are ignored; the tail keeps moving', async () => {
    const key = freshKey();
    const malformed: string[] = [];
    const bus = await open(key, { onMalformed: (id: string) => malformed.push(id) });
    try {
      const seen: PurgeBusEvent[] = [];
      bus.subscribe(null, (e) => seen.push(e));
      const first = await bus.publish(purge('k1'));
      const [, incarnation] = first.message.position.split(':');
      const badId = await standalone.xadd(`${key}:stream`, '*', 'hello', 'world');
      // The next numbers, as a newer origin would write them: one with an extra field, one in a format this one cannot read.
      await standalone.hincrby(`${key}:meta`, 'seq', 1);
      const extra = JSON.stringify({ ...purge('k2'), future: { anything: 1 } });
      await standalone.xadd(`${key}:stream`, '*', 'v', '1', 'inc', incarnation!, 'seq', '2', 'data', extra);
      await standalone.hincrby(`${key}:meta`, 'seq', 1);
      await standalone.xadd(`${key}:stream`, '*', 'v', '99', 'inc', incarnation!, 'seq', '3', 'data', '{}');
      await bus.publish(purge('k4'));
      await eventually('the tail to pass all of them', () => seen.length === 4);
      expect(seen.map((e) => (e.type === 'purge' ? e.keys[0] : e.type))).toEqual(['k1', 'k2', 'reset', 'k4']);
      expect(malformed).toEqual([badId]);
      expect(bus.health().tailLive).toBe(true);
    } finally {
      await bus.close();
    }
  });

  it('entries lost behind the tail (numbering goes back, as after a failover to a replica that missed them) answer reset', async () => {
    const key = freshKey();
    const bus = await open(key);
    try {
      const seen: PurgeBusEvent[] = [];
      bus.subscribe(null, (e) => seen.push(e));
      await bus.publish(purge('k1'));
      await bus.publish(purge('k2'));
      // What a promoted replica that missed the last entry holds: the number one lower.
      await standalone.hset(`${key}:meta`, 'seq', 1);
      await bus.publish(purge('k3'));
      await eventually('a reset', () => seen.some((e) => e.type === 'reset'));
      expect(seen.map((e) => e.type)).toEqual(['purge', 'purge', 'reset']);
    } finally {
      await bus.close();
    }
  });

  it('a tail whose Redis is gone reports tailLive false and recovers', async () => {
    // A Redis of its own: pausing the shared one would stall every other test file using it.
    const own = await startRedis({ dir: join(inject('serversDir'), `redis-${process.pid}-paused-tail`) });
    const client = new Redis(own.url, { lazyConnect: true });
    const bus = await RedisStreamPurgeBus.open({
      client,
      retainedEntries: 100,
      retentionSeconds: 3600,
      key: freshKey(),
    });
    try {
      expect(bus.health().tailLive).toBe(true);
      await client.client('PAUSE', 4000, 'ALL');
      await eventually('the tail to be reported stale', () => !bus.health().tailLive, 10_000);
      await eventually('the tail to recover', () => bus.health().tailLive, 10_000);
    } finally {
      await client.client('UNPAUSE').catch(() => {});
      await bus.close();
      client.disconnect();
      await own.stop();
    }
  });

  it('waits for replicas it is told to: with none connected, publish rejects', async () => {
    const bus = await RedisStreamPurgeBus.open({
      client: standalone,
      retainedEntries: 10,
      retentionSeconds: 3600,
      key: freshKey(),
      waitReplicas: 1,
      waitTimeoutMs: 100,
    });
    try {
      await expect(bus.publish(purge('k1'))).rejects.toThrow(/0 of 1 replicas/);
    } finally {
      await bus.close();
    }
  });

  it('on the Cluster, the log master has a replica, so publish waits for it by default', async () => {
    const bus = await RedisStreamPurgeBus.open({
      client: clusterClient,
      retainedEntries: 10,
      retentionSeconds: 3600,
      key: freshKey(),
    });
    try {
      expect(bus.waitReplicas).toBe(1);
      const published = await bus.publish(purge('k1'));
      expect(published.seq).toBe(1);
    } finally {
      await bus.close();
    }
  });
});
