import { inject } from 'vitest';
import { redisStore } from '../../origin/store/redis.ts';
import { runStoreConformance } from './store-conformance.ts';

runStoreConformance('Redis standalone', () => redisStore({ url: inject('redisUrl') }));
