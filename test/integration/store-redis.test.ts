import { inject } from 'vitest';
import { redisStore } from '../../origin/store/redis.ts';
import { redisNamespaceVersions } from '../../origin/store/redis-namespaces.ts';
import { resilientRedisFromConfig } from '../../origin/store/resilient-from-config.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { storeConformance } from '../conformance/store.ts';

storeConformance('Redis standalone', () => redisStore({ url: inject('redisUrl') }), {
  namespaceVersions: (store) => redisNamespaceVersions(store.client),
});

storeConformance(
  'Redis standalone behind the breaker and local tier',
  () => resilientRedisFromConfig(parseConfig(originConfigSchema, { REDIS_URL: inject('redisUrl') }))!,
  { tiered: (store) => store },
);
