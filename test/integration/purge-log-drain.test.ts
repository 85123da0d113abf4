import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ssePurgeSource } from '../../edge/purge-sources/sse.ts';
import type { RedisStreamPurgeBus } from '../../origin/purge/redis-stream-bus.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import type { PurgeMessage, ResetMessage } from '../../shared/schemas.ts';
import { cleanEnv, spawnEntry } from '../support/spawn-entry.ts';
import { originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * A real origin process stopped with SIGTERM in the middle of a stream of
 * writes, beside a second replica on the same Redis purge log: everything
 * it acknowledged is in the log, and an edge that followed it and moves to
 * the other replica (from the position it held) has every purge, with no
 * reset.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('an origin stopped with SIGTERM during writes', () => {
  it('logs and relays every change it acknowledged before it exits', async () => {
    const env = { REDIS_URL: inject('redisUrl'), PURGE_LOG_KEY: ownPurgeLogKey(), LOG_LEVEL: 'silent' };
    const other = await originFor(env);
    cleanups.push(() => other.close());
    const port = await freePort();
    const proc = spawnEntry('origin/main.ts', cleanEnv({ ...env, ORIGIN_PORT: String(port) }));
    cleanups.push(async () => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) await proc.stop();
    });
    const url = `http://127.0.0.1:${port}`;
    await eventually('the stopping replica to listen', async () => (await fetch(`${url}/health`)).ok, 20_000, 50);

    // An edge's purge source on the replica about to stop.
    const purges: PurgeMessage[] = [];
    const resets: ResetMessage[] = [];
    const handlers = { onPurge: (m: PurgeMessage) => purges.push(m), onReset: (m: ResetMessage) => resets.push(m) };
    const first = ssePurgeSource({ originUrl: url, retry: { minMs: 50, maxMs: 200 } }).subscribe(handlers);
    cleanups.push(() => first.close());
    await eventually('the edge to follow the stopping replica', () => first.connected, 10_000);

    // Writers until the process is gone; SIGTERM once some writes were acknowledged.
    const acknowledged: string[] = [];
    let stopped = false;
    const writer = async (w: number) => {
      for (let i = 0; !stopped; i++) {
        const key = `w${w}-${i}`;
        try {
          const res = await fetch(`${url}/api/v1/cache/drain/${key}`, { method: 'PUT', body: key });
          if (res.status === 200) acknowledged.push(key);
        } catch {
          // Refused or cut by the shutdown: not acknowledged.
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await eventually('writes to be acknowledged', () => acknowledged.length >= 20, 15_000);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    stopped = true;
    await Promise.all(writers);
    expect(acknowledged.length).toBeGreaterThanOrEqual(20);

    // Logged: each acknowledged write's purge (the commit of its intent) is in the region's log.
    const redis = new Redis(inject('redisUrl'));
    cleanups.push(() => redis.disconnect());
    const entries = (await redis.xrange(`${env.PURGE_LOG_KEY}:stream`, '-', '+')) as [string, string[]][];
    const logged = new Set<string>();
    for (const [, fields] of entries) {
      const at = (name: string) => fields[fields.indexOf(name) + 1];
      if (!fields.includes('intent')) for (const key of JSON.parse(at('data')!).keys as string[]) logged.add(key);
    }
    expect(acknowledged.filter((key) => !logged.has(key))).toEqual([]);

    // Relayed: the edge moves to the other replica from the position it held and has every acknowledged purge.
    first.close();
    const from = first.position;
    expect(from).not.toBeNull();
    const second = ssePurgeSource({ originUrl: other.url, retry: { minMs: 50, maxMs: 200 } }).subscribe(handlers, {
      from,
    });
    cleanups.push(() => second.close());
    const relayed = () => new Set(purges.flatMap((m) => m.keys));
    await eventually('every acknowledged purge at the edge', () => acknowledged.every((key) => relayed().has(key)));
    expect(resets).toEqual([]);
    // Changes cut mid-way by the shutdown left intents; the other replica recovers them.
    await eventually('no intent left open', () => (other.bus as RedisStreamPurgeBus).openIntents === 0, 15_000, 50);
  });
});
