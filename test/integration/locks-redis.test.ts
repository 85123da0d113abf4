import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { redisLockStore } from '../../origin/locks/redis.ts';
import { lockConformance } from '../conformance/locks.ts';

let client: Redis;
lockConformance(
  'Redis standalone',
  () => {
    client = new Redis(inject('redisUrl'));
    return redisLockStore(client);
  },
  () => client?.disconnect(),
);
