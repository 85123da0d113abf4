import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { PurgeBusEvent, PurgeScope } from '../../origin/purge/bus.ts';
import { RedisStreamPurgeBus } from '../../origin/purge/redis-stream-bus.ts';
import { purgeLogEntrySchema } from '../../shared/schemas.ts';
import { eventually } from '../support/wait.ts';

/** Intents in the region's purge log, on the bus alone (the test Redis, a log key of its own per test). */
const standalone = new Redis(inject('redisUrl'), { lazyConnect: true });
let logs = 0;
const freshKey = () => `{intents-purge-log-${process.pid}-${++logs}}`;
const buses: RedisStreamPurgeBus[] = [];
afterEach(async () => {
  for (const bus of buses.splice(0)) await bus.close();
});
const open = async (key: string, intentTimeoutMs = 60_000) => {
  const bus = await RedisStreamPurgeBus.open({
    client: standalone,
    retainedEntries: 1_000,
    retentionSeconds: 3600,
    key,
    intentTimeoutMs,
  });
  buses.push(bus);
  return bus;
};
const scope = (keys: string[]): PurgeScope => ({ namespace: 'ns', keys, tags: [], prefix: null });
const purge = (keys: string[], version: number) => ({ ...scope(keys), version, action: 'update' as const, ts: 1 });

describe('intents in the Redis purge log', () => {
  it('are logged but never relayed; the purge that closes one is', async () => {
    const bus = await open(freshKey());
    const seen: PurgeBusEvent[] = [];
    bus.subscribe(null, (e) => seen.push(e));
    const intent = await bus.intend(scope(['a']));
    await eventually('the tail to see the intent', () => bus.openIntents === 1);
    await bus.publish(purge(['a'], 7), { closes: intent });
    expect(bus.openIntents).toBe(0);
    expect(seen.map((e) => (e.type === 'purge' ? e.keys : e.type))).toEqual([['a']]);
    // Both are numbered in the log: seq counts the intent.
    expect(bus.health().seq).toBe(2);
  });

  it('an intent entry reads as a purge that drops nothing to an origin that does not know intents', async () => {
    const key = freshKey();
    const bus = await open(key);
    await bus.intend(scope(['a', 'b']));
    const [entry] = (await standalone.xrange(`${key}:stream`, '-', '+')) as [string, string[]][];
    const fields = entry?.[1] ?? [];
    const data = purgeLogEntrySchema.parse(JSON.parse(fields[fields.indexOf('data') + 1]!));
    expect(data).toMatchObject({ namespace: 'ns', keys: ['a', 'b'], version: 0 });
  });

  it('a poll behind a run of intents reads on past them to the next purge', async () => {
    const bus = await open(freshKey());
    const start = (await bus.read(null, 1)).head;
    for (let i = 0; i < 5; i++) await bus.intend(scope([`k${i}`]));
    await bus.publish(purge(['after'], 3));
    const page = await bus.read(start, 2);
    expect(page.reset).toBeNull();
    expect(page.entries.map((e) => e.keys)).toEqual([['after']]);
  });

  it('an intent left open past the timeout is handed to the recovery, once, and a replica opened later finds it too', async () => {
    const key = freshKey();
    const recovered: { scope: PurgeScope; id: string }[] = [];
    const a = await open(key, 200);
    a.recoverIntentsWith(async (s, id) => {
      recovered.push({ scope: s, id });
      await a.publish(purge(s.keys, 9), { closes: id });
    });
    const closedInTime = await a.intend(scope(['fine']));
    await a.publish(purge(['fine'], 5), { closes: closedInTime });
    const orphan = await a.intend(scope(['orphan']));
    // A replica opened while the intent is open finds it in the log (it has no recovery set, so it only holds it).
    const late = await open(key, 200);
    expect(late.openIntents).toBe(1);
    await eventually('the orphan to be recovered', () => recovered.length === 1, 5_000);
    expect(recovered).toEqual([{ scope: scope(['orphan']), id: orphan }]);
    await eventually('both replicas to see the intent closed', () => a.openIntents === 0 && late.openIntents === 0);
  });

  it('an intent of another region’s invalidation keeps its region, in the log and in what recovery is handed', async () => {
    const key = freshKey();
    const recovered: PurgeScope[] = [];
    const bus = await open(key, 200);
    bus.recoverIntentsWith(async (s, id) => {
      recovered.push(s);
      await bus.publish(purge(s.keys, 9), { closes: id });
    });
    await bus.intend({ ...scope(['from-a']), origin_region: 'a' });
    const [entry] = (await standalone.xrange(`${key}:stream`, '-', '+')) as [string, string[]][];
    const fields = entry?.[1] ?? [];
    expect(purgeLogEntrySchema.parse(JSON.parse(fields[fields.indexOf('data') + 1]!))).toMatchObject({
      keys: ['from-a'],
      origin_region: 'a',
    });
    await eventually('the intent to be recovered', () => recovered.length === 1, 5_000);
    expect(recovered).toEqual([{ ...scope(['from-a']), origin_region: 'a' }]);
  });
});
