import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { RedisStreamPurgeBus } from '../../origin/purge/redis-stream-bus.ts';

/**
 * `WAIT` blocks the connection it is sent on until it returns, so the purge
 * log sends one at a time and appends answered meanwhile share the next
 * (group commit). With one `WAIT` per append, a replica that cannot
 * acknowledge (gone, or resyncing after a failover) made every append queue
 * behind every earlier append's full `WAIT` timeout: under steady writes the
 * queue outgrew the append bound, and every write failed with a timeout long
 * after the replica's loss was known (seen in the Redis Cluster failover
 * test on a loaded machine).
 */
const client = new Redis(inject('redisUrl'), { lazyConnect: true });
afterAll(() => client.disconnect());

describe('purge log WAIT is group-committed', () => {
  it('concurrent publishes whose replica cannot acknowledge share WAITs: each gets the WAIT verdict, none times out in a queue', async () => {
    const waitTimeoutMs = 300;
    // The test Redis has no replica: every WAIT for one runs to its timeout and acknowledges 0.
    const bus = await RedisStreamPurgeBus.open({
      client,
      retainedEntries: 1_000,
      retentionSeconds: 3600,
      key: `{group-wait-${process.pid}}`,
      waitReplicas: 1,
      waitTimeoutMs,
    });
    try {
      const publishes = 12;
      const outcomes = await Promise.allSettled(
        Array.from({ length: publishes }, (_, i) =>
          bus.publish({
            namespace: 'ns',
            keys: [`k${i}`],
            tags: [],
            prefix: null,
            version: i + 1,
            action: 'update',
            ts: 1,
          }),
        ),
      );
      const reasons = outcomes.map((o) =>
        o.status === 'rejected' ? String((o.reason as Error).message) : 'acknowledged',
      );
      // Twelve WAITs in a row would take 3.6 s; the append bound is 1.3 s: with one WAIT per append most
      // publishes would time out behind the others instead of hearing that the replica did not acknowledge.
      expect(reasons).toEqual(
        Array(publishes).fill(`purge log entry reached 0 of 1 replicas within ${waitTimeoutMs} ms`),
      );
    } finally {
      await bus.close();
    }
  });
});
