import { join } from 'node:path';
import { afterAll, beforeAll, inject } from 'vitest';
import { redisClusterStore } from '../../origin/store/redis-cluster.ts';
import { redisNamespaceVersions } from '../../origin/store/redis-namespaces.ts';
import { resilientRedisFromConfig } from '../../origin/store/resilient-from-config.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { storeConformance } from '../conformance/store.ts';

let cluster: RunningRedisCluster;
beforeAll(async () => {
  cluster = await startRedisCluster({ dir: join(inject('serversDir'), `cluster-${process.pid}-store-conformance`) });
});
afterAll(async () => {
  await cluster?.stop();
});

storeConformance(
  'Redis Cluster (6 nodes)',
  () => redisClusterStore({ nodes: cluster.env.REDIS_CLUSTER_NODES!.split(',') }),
  {
    namespaceVersions: (store) => redisNamespaceVersions(store.client),
  },
);

storeConformance(
  'Redis Cluster behind the breaker and local tier',
  () =>
    resilientRedisFromConfig(
      parseConfig(originConfigSchema, { REDIS_CLUSTER_NODES: cluster.env.REDIS_CLUSTER_NODES }),
    )!,
  { tiered: (store) => store },
);
