import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ssePurgeSource } from '../../edge/purge-sources/sse.ts';
import type { RedisStreamPurgeBus } from '../../origin/purge/redis-stream-bus.ts';
import { entryKey } from '../../origin/store/redis-codec.ts';
import { killPid } from '../../scripts/lib/proc.ts';
import { startRedis } from '../../scripts/services/redis.ts';
import type { PurgeMessage, ResetMessage } from '../../shared/schemas.ts';
import { cuttableProxy } from '../support/proxy.ts';
import { originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The region's purge log on a standalone Redis master with one replica,
 * behind a fixed address (a TCP proxy standing in for a virtual IP or DNS
 * name). Under a stream of writes the master is SIGKILLed, the replica
 * promoted (`REPLICAOF NO ONE`) and the address moved to it.
 */
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('the purge log when a standalone Redis master fails over to its replica', () => {
  it('loses nothing acknowledged with WAIT, resumes the tail, and tells the edges (purges or a reset, never silence)', async () => {
    const base = join(inject('serversDir'), `redis-${process.pid}-purge-failover`);
    const master = await startRedis({ dir: join(base, 'master') });
    cleanups.push(() => master.stop());
    const replica = await startRedis({ dir: join(base, 'replica') });
    cleanups.push(() => replica.stop());
    const replicaClient = new Redis(replica.port, '127.0.0.1');
    cleanups.push(() => replicaClient.disconnect());
    await replicaClient.replicaof('127.0.0.1', master.port);
    await eventually(
      'the replica to follow the master',
      async () => (await replicaClient.info('replication')).includes('master_link_status:up'),
      15_000,
      50,
    );
    const proxy = await cuttableProxy(master.port);
    cleanups.push(() => proxy.close());
    const key = ownPurgeLogKey();
    const origin = await originFor({
      REDIS_URL: proxy.url.replace('http:', 'redis:'),
      PURGE_LOG_KEY: key,
      BREAKER_RECOVERY_INTERVAL_MS: '200',
      LOG_LEVEL: 'silent',
    });
    cleanups.push(() => origin.close());
    const bus = origin.bus as RedisStreamPurgeBus;
    // Not configured: the log's master has a replica, so every purge waits for it.
    expect(bus.waitReplicas).toBe(1);

    const purges: PurgeMessage[] = [];
    const resets: ResetMessage[] = [];
    const edge = ssePurgeSource({ originUrl: origin.url, retry: { minMs: 50, maxMs: 200 } }).subscribe({
      onPurge: (m) => purges.push(m),
      onReset: (m) => resets.push(m),
    });
    cleanups.push(() => edge.close());
    await eventually('the edge to follow the origin', () => edge.connected, 10_000);

    // Writers; a 200 without X-Cache-Degraded is a change acknowledged with its purge in the log on the replica.
    const acknowledged: string[] = [];
    let stopped = false;
    const writer = async (w: number) => {
      for (let i = 0; !stopped; i++) {
        const k = `w${w}-${i}`;
        try {
          const res = await fetch(`${origin.url}/api/v1/cache/failover/${k}?ttl=600`, { method: 'PUT', body: k });
          if (res.status === 200 && res.headers.get('x-cache-degraded') !== '1') acknowledged.push(k);
        } catch {
          // Not acknowledged.
        }
        if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const writers = [0, 1, 2].map(writer);
    try {
      await eventually('writes acknowledged before the failover', () => acknowledged.length >= 30, 15_000);
      const before = acknowledged.length;
      // The failover: the master dies with whatever it had not replicated; the replica takes over the address.
      killPid(master.pids[0]!, 'SIGKILL');
      await replicaClient.replicaof('NO', 'ONE');
      proxy.retarget(replica.port);
      await eventually('writes acknowledged after the failover', () => acknowledged.length >= before + 30, 30_000, 50);
    } finally {
      stopped = true;
      await Promise.all(writers);
    }

    // Nothing acknowledged is lost: every acknowledged change's purge is in the promoted replica's log (an intent
    // may have been skipped while the tail was down, so the purge need not close one), and its value is in the store.
    const entries = (await replicaClient.xrange(`${key}:stream`, '-', '+')) as [string, string[]][];
    const logged = new Set<string>();
    for (const [, fields] of entries) {
      if (fields.includes('intent')) continue;
      for (const k of JSON.parse(fields[fields.indexOf('data') + 1]!).keys as string[]) logged.add(k);
    }
    expect(acknowledged.filter((k) => !logged.has(k))).toEqual([]);
    const exists = await replicaClient.pipeline(acknowledged.map((k) => ['exists', entryKey('failover', k)])).exec();
    expect(acknowledged.filter((_, i) => exists?.[i]?.[1] !== 1)).toEqual([]);

    // The tail resumed on the promoted replica, and the edge was told: every acknowledged purge, or a reset.
    await eventually('the tail to be live again', () => bus.health().tailLive, 15_000, 50);
    await eventually('the edge to have every acknowledged purge, or a reset', () => {
      const relayed = new Set(purges.flatMap((m) => m.keys));
      return resets.length > 0 || acknowledged.every((k) => relayed.has(k));
    });
  });
});
