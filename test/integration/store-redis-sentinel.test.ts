import { join } from 'node:path';
import { afterAll, beforeAll, inject } from 'vitest';
import { redisStore } from '../../origin/store/redis.ts';
import { resilientRedisFromConfig } from '../../origin/store/resilient-from-config.ts';
import { type RunningRedisSentinel, startRedisSentinel } from '../../scripts/services/redis-sentinel.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { storeConformance } from '../conformance/store.ts';

let sentinel: RunningRedisSentinel;
beforeAll(async () => {
  sentinel = await startRedisSentinel({ dir: join(inject('serversDir'), `sentinel-${process.pid}-store-conformance`) });
});
afterAll(async () => {
  await sentinel?.stop();
});

storeConformance('Redis master found through Sentinel', () =>
  redisStore({
    redis: {
      sentinels: sentinel.sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
      name: sentinel.env.REDIS_SENTINEL_MASTER!,
    },
  }),
);

storeConformance(
  'Redis Sentinel behind the breaker and local tier, waiting for both replicas',
  () =>
    resilientRedisFromConfig(
      parseConfig(originConfigSchema, { ...sentinel.env, REDIS_WAIT_REPLICAS: '2', REDIS_WAIT_TIMEOUT_MS: '250' }),
    )!,
  { tiered: (store) => store },
);
