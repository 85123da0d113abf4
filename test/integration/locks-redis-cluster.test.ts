import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { lockKeys, redisLockStore } from '../../origin/locks/redis.ts';
import { parseClusterNodes } from '../../origin/store/redis-cluster.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { lockConformance } from '../conformance/locks.ts';

let cluster: RunningRedisCluster;
let client: Cluster;
beforeAll(async () => {
  cluster = await startRedisCluster({ dir: join(inject('serversDir'), `cluster-${process.pid}-lock-conformance`) });
});
afterAll(async () => {
  await cluster?.stop();
});

lockConformance(
  'Redis Cluster (6 nodes)',
  () => {
    client = new Cluster(parseClusterNodes(cluster.env.REDIS_CLUSTER_NODES!.split(',')));
    return redisLockStore(client);
  },
  () => client?.disconnect(),
);

describe('lock keys on a Redis Cluster', () => {
  it('puts a lock’s holder and history keys in one hash slot, whatever the name holds', () => {
    for (const name of ['job', 'a:b', 'with}brace', '{tagged}', 'ü-名前']) {
      const [holder, history] = lockKeys('ns', name);
      expect(calculateSlot(history)).toBe(calculateSlot(holder));
    }
  });
});
