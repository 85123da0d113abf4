import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { redisStore } from '../../origin/store/redis.ts';
import { resilientRedisFromConfig } from '../../origin/store/resilient-from-config.ts';
import { type RunningRedisSentinel, startRedisSentinel } from '../../scripts/services/redis-sentinel.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { storeConformance } from '../conformance/store.ts';
import { originFor } from '../support/stack.ts';

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

describe('origin on Redis Sentinel', () => {
  it('starts from REDIS_SENTINELS and REDIS_SENTINEL_MASTER, serves REST from the master and reports it ready', async () => {
    const origin = await originFor({ ...sentinel.env, REDIS_REQUIRED_AT_START: 'true' });
    try {
      const url = `${origin.url}/api/v1/cache/sentinel/k`;
      expect((await fetch(url, { method: 'PUT', body: 'via sentinel' })).status).toBe(200);
      const read = await fetch(url);
      expect(read.headers.get('X-Cache-Tier')).toBe('redis');
      expect(await read.text()).toBe('via sentinel');
      expect((await fetch(`${origin.url}/ready`)).status).toBe(200);
      const master = await sentinel.masterPort();
      expect(sentinel.dataPorts).toContain(master);
    } finally {
      await origin.close();
    }
  });

  it('refuses a configuration naming both Cluster and Sentinel, or a master name without sentinels', () => {
    const both = parseConfig(originConfigSchema, { ...sentinel.env, REDIS_CLUSTER_NODES: '127.0.0.1:1' });
    expect(() => resilientRedisFromConfig(both)).toThrow(/REDIS_CLUSTER_NODES or REDIS_SENTINELS/);
    const half = parseConfig(originConfigSchema, { REDIS_SENTINEL_MASTER: 'strata' });
    expect(() => resilientRedisFromConfig(half)).toThrow(/go together/);
  });
});
