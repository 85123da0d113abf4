import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { scrape } from '../support/prometheus.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

let cluster: RunningRedisCluster;
beforeAll(async () => {
  cluster = await startRedisCluster({ dir: join(inject('serversDir'), `cluster-${process.pid}-node-status`) });
});
afterAll(async () => {
  await cluster?.stop();
});

/** Issue 7: "per-node status in cluster mode", on a real 6-node cluster. */
describe('Redis node status', () => {
  it('lists every cluster node with its role, and a killed node reads 0', async () => {
    const origin = await originFor({ REDIS_CLUSTER_NODES: cluster.env.REDIS_CLUSTER_NODES! });
    try {
      expect((await fetch(`${origin.url}/api/v1/cache/ns/k?ttl=60`, { method: 'PUT', body: 'v' })).status).toBe(200);
      const up = async () =>
        (await scrape(origin.url)).filter((s) => s.name === 'strata_redis_node_up' && s.labels.node !== undefined);
      const all = await eventually(
        'all six nodes up',
        async () => {
          const s = await up();
          return s.length === 6 && s.every((x) => x.value === 1) ? s : undefined;
        },
        15_000,
        100,
      );
      expect(all.filter((s) => s.labels.role === 'master')).toHaveLength(3);
      expect(all.filter((s) => s.labels.role === 'replica')).toHaveLength(3);

      const replica = (await cluster.nodes()).find((n) => n.role === 'replica')!;
      await cluster.killNode(replica.port);
      // The cluster flags it (pfail after cluster-node-timeout); its link is down at once.
      await eventually(
        'the killed replica to read 0',
        async () => {
          const s = (await up()).find((x) => x.labels.node === `127.0.0.1:${replica.port}`);
          return s !== undefined && s.value === 0;
        },
        15_000,
        100,
      );
    } finally {
      await origin.close();
    }
  });
});
