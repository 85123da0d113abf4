import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { lockHistoryRetentionMs } from '../../origin/locks/lock-store.ts';
import { lockKeys, redisLockStore } from '../../origin/locks/redis.ts';
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

describe('lock history on Redis', () => {
  it('expires a day after the last lease ends (granted or released), so lock names do not pile up', async () => {
    const redis = new Redis(inject('redisUrl'));
    try {
      const store = redisLockStore(redis);
      const name = `history-${Date.now()}`;
      const [, history] = lockKeys('ns', name);
      const granted = await store.acquire('ns', name, 5_000);
      expect(granted.acquired).toBe(true);
      const afterGrant = await redis.pexpiretime(history);
      if (!granted.acquired) return;
      expect(afterGrant).toBe(granted.grant.expiresAtMs + lockHistoryRetentionMs);
      await store.release('ns', name, granted.grant.token);
      const afterRelease = await redis.pexpiretime(history);
      expect(afterRelease).toBeGreaterThan(0);
      expect(afterRelease).toBeLessThanOrEqual(granted.grant.expiresAtMs + lockHistoryRetentionMs);
      expect(await redis.hget(history, 'r')).toBe('1');
    } finally {
      redis.disconnect();
    }
  });
});
