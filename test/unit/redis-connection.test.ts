import { describe, expect, it } from 'vitest';
import { memoryStore } from '../../origin/store/memory.ts';
import { ReplicaWaitError, waitForReplicas } from '../../origin/store/replica-wait.ts';
import { reconnectDelayMs, redisConnectionOptions } from '../../origin/store/resilient-from-config.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';

const input = { value: new Uint8Array([1]), contentType: 'x', ttlMs: 60_000, tags: [] };

describe('Redis connection settings', () => {
  it('reconnect delays start at REDIS_RECONNECT_BASE_MS, double, and stop at REDIS_RECONNECT_MAX_MS', () => {
    const config = parseConfig(originConfigSchema, { REDIS_RECONNECT_BASE_MS: '40', REDIS_RECONNECT_MAX_MS: '300' });
    expect([1, 2, 3, 4, 5, 1000].map((n) => reconnectDelayMs(config, n))).toEqual([40, 80, 160, 300, 300, 300]);
  });

  it('the ioredis options carry REDIS_CONNECT_TIMEOUT_MS and that back-off', () => {
    const config = parseConfig(originConfigSchema, { REDIS_CONNECT_TIMEOUT_MS: '750' });
    const options = redisConnectionOptions(config);
    expect(options.connectTimeout).toBe(750);
    expect(options.retryStrategy?.(1)).toBe(config.REDIS_RECONNECT_BASE_MS);
  });
});

describe('waitForReplicas', () => {
  it('sends WAIT after each change and fails the change when too few replicas confirmed', async () => {
    const calls: Array<[number, number]> = [];
    let confirmed = 2;
    const client = {
      wait: async (n: number, ms: number) => {
        calls.push([n, ms]);
        return confirmed;
      },
    };
    const store = waitForReplicas(memoryStore({ maxBytes: 1 << 20 }), client, { replicas: 2, timeoutMs: 50 });
    await store.set('ns', 'a', input);
    await store.delete('ns', 'a');
    expect(calls).toEqual([
      [2, 50],
      [2, 50],
    ]);
    expect(await store.get('ns', 'missing')).toBeNull();
    expect(calls).toHaveLength(2);
    confirmed = 1;
    await expect(store.set('ns', 'b', input)).rejects.toBeInstanceOf(ReplicaWaitError);
  });
});
