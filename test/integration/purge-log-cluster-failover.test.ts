import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import { defaultPurgeLogKey, RedisStreamPurgeBus } from '../../origin/purge/redis-stream-bus.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * Two origin replicas on a real 6-node Cluster share the purge log; the
 * master holding the log is killed in the middle of a write stream. After
 * the failover every replica's tail is live again, and no edge of either
 * replica serves a value older than the last one acknowledged: entries the
 * failover could not confirm led to a reset, never to silence. The number
 * of replicas each write waits for follows the failover and the rejoin.
 */
describe('purge log on Redis Cluster while the master holding it is killed', () => {
  let cluster: RunningRedisCluster;
  const origins: RunningOrigin[] = [];
  const edges: RunningEdge[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster({
      dir: join(inject('serversDir'), `cluster-${process.pid}-purge-log-failover`),
      nodeTimeoutMs: 2_000,
    });
    const env = {
      REDIS_CLUSTER_NODES: cluster.env.REDIS_CLUSTER_NODES!,
      BREAKER_RECOVERY_INTERVAL_MS: '200',
      PURGE_HEARTBEAT_SECONDS: '1',
      // Both replicas on the default log, whose slot the test looks up.
      PURGE_LOG_KEY: defaultPurgeLogKey,
    };
    origins.push(await originFor(env), await originFor(env));
    for (const origin of origins) edges.push(await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '60' }));
  }, 120_000);

  afterAll(async () => {
    for (const edge of edges) await edge.close();
    for (const origin of origins) await origin.close();
    await cluster?.stop();
  });

  it('the tails resume after the failover and no edge serves a value older than the last acknowledged one', {
    timeout: 120_000,
  }, async () => {
    const client = new Cluster(
      cluster.env.REDIS_CLUSTER_NODES!.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })),
    );
    const slot = Number(await client.cluster('KEYSLOT', `${defaultPurgeLogKey}:stream`));
    client.disconnect();
    const owner = (await cluster.nodes()).find(
      (n) => n.role === 'master' && n.slots?.some(([first, last]) => slot >= first && slot <= last),
    )!;
    expect(owner).toBeDefined();

    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    const lastAcked = new Map<string, number>();
    let counter = 0;
    let running = true;
    const put = (base: string, key: string, body: string) =>
      fetch(`${base}/api/v1/cache/failover-log/${key}?ttl=600`, { method: 'PUT', body });
    const read = async (base: string, key: string) => {
      const res = await fetch(`${base}/api/v1/cache/failover-log/${key}`);
      return { status: res.status, body: await res.text() };
    };
    const writer = async (origin: RunningOrigin) => {
      while (running) {
        const key = keys[counter % keys.length]!;
        const n = ++counter;
        try {
          const res = await put(origin.url, key, String(n));
          // Acknowledged, and not a degraded (local-tier-only) answer: covered by the bound.
          if (res.status === 200 && res.headers.get('X-Cache-Degraded') !== '1') {
            lastAcked.set(key, Math.max(lastAcked.get(key) ?? 0, n));
          }
        } catch {
          // A connection error is not an acknowledgement.
        }
        // Readers at both edges keep copies cached, so a missed purge would show.
        for (const edge of edges) await read(edge.url, key).catch(() => undefined);
      }
    };
    const load = [writer(origins[0]!), writer(origins[1]!)];
    await eventually('writes before the kill', () => counter >= 40, 15_000);
    await cluster.killNode(owner.port);
    await eventually(
      'a replica promoted for the log slot',
      async () =>
        (await cluster.nodes()).some(
          (n) => n.role === 'master' && n.alive && n.slots?.some(([first, last]) => slot >= first && slot <= last),
        ),
      30_000,
      100,
    );
    const atPromotion = counter;
    // The purge log's replica count (how many replicas WAIT asks for) follows the topology while writes
    // keep coming: none once the promoted master is left without one, one again once the old master rejoins.
    const buses = origins.map((o) => o.bus);
    expect(buses.every((b) => b instanceof RedisStreamPurgeBus)).toBe(true);
    const replicaCounts = async (want: number, what: string) => {
      const seen: string[] = [];
      const since = Date.now();
      await eventually(
        what,
        () => {
          const counts = buses.map((b) => (b as RedisStreamPurgeBus).waitReplicas);
          seen.push(`${Date.now() - since} ms: ${counts.join(',')}`);
          return counts.every((n) => n === want);
        },
        15_000,
        100,
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; counts seen ${seen.slice(-5).join(' | ')}`);
      });
    };
    await replicaCounts(0, 'no replica to WAIT for after the failover');
    await eventually('writes after the promotion', () => counter >= atPromotion + 40, 30_000);
    // The killed node comes back as the promoted master's replica, with writes still coming.
    await cluster.startAll();
    await replicaCounts(1, 'the rejoined replica waited for again');
    const atRejoin = counter;
    await eventually('writes after the rejoin', () => counter >= atRejoin + 40, 30_000);
    running = false;
    await Promise.all(load);

    await eventually(
      'both tails live and at one head',
      () =>
        origins.every((o) => o.bus.health().tailLive) &&
        origins[0]!.bus.health().position === origins[1]!.bus.health().position,
      20_000,
      50,
    );
    await eventually(
      'every edge at the head',
      () => edges.every((e) => e.subscription.position === origins[0]!.bus.health().position),
      20_000,
      50,
    );
    expect(lastAcked.size).toBeGreaterThan(0);
    for (const [key, n] of lastAcked) {
      for (const edge of edges) {
        const { status, body } = await read(edge.url, key);
        expect(status).toBe(200);
        // Newer is fine (a write that answered 503 may still have landed); older is a missed purge.
        expect(Number(body)).toBeGreaterThanOrEqual(n);
      }
    }
  });
});
