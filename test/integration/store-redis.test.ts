import { inject } from 'vitest';
import { redisStore } from '../../origin/store/redis.ts';
import { resilientRedisFromConfig } from '../../origin/store/resilient-from-config.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { storeConformance } from '../conformance/store.ts';

storeConformance('Redis standalone', () => redisStore({ url: inject('redisUrl') }));

storeConformance(
  'Redis standalone behind the breaker and local tier',
  () => resilientRedisFromConfig(parseConfig(originConfigSchema, { REDIS_URL: inject('redisUrl') }))!,
  { tiered: (store) => store },
);
