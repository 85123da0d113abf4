/**
 * The region forwarder with a pool of idempotent producers, on the real test
 * Redis (the purge log) and the real test Kafka broker: events over many keys
 * leave through several producers at once and still reach the topic in log
 * order per key, and a send that fails mid-stream loses nothing and keeps
 * that order (later sends on its producer wait for the re-read).
 */
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { RedisStreamPurgeBus } from '../../origin/purge/redis-stream-bus.ts';
import { forwarderGroup, RegionForwarder } from '../../origin/regions/forwarder.ts';
import { createTopics, uniqueName } from '../support/kafka.ts';
import { distinctIds, firstOccurrencesPerKey, increasing, topicEvents } from '../support/region-topic.ts';
import { ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const brokers = inject('kafkaBrokers');
const client = new Redis(inject('redisUrl'), { lazyConnect: true });
const kafka = new Kafka({ clientId: 'strata-test-forwarder-pool', brokers: [brokers], logLevel: logLevel.NOTHING });
const quiet = pino({ level: 'silent' });
let topic: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  topic = uniqueName('inv-pool');
  await createTopics(brokers, topic, 6);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => client.disconnect());

/** Sends in flight across a test's producers, and the most seen at once. */
interface Watch {
  inFlight: number;
  most: number;
  sends: number[];
}

/**
 * A real idempotent producer (as the origin makes them) whose sends are
 * counted; its `failAt`-th send, if given, fails (after 100 ms, as a broker that stopped
 * answering) without reaching Kafka.
 */
function watched(watch: Watch, index: number, failAt?: number): Producer {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  let calls = 0;
  watch.sends[index] = 0;
  return {
    ...producer,
    async send(record) {
      calls += 1;
      watch.sends[index]! += 1;
      watch.inFlight += 1;
      watch.most = Math.max(watch.most, watch.inFlight);
      try {
        if (calls === failAt) {
          await new Promise((r) => setTimeout(r, 100));
          throw new Error('broker unreachable (test)');
        }
        return await producer.send(record);
      } finally {
        watch.inFlight -= 1;
      }
    },
  };
}

/** A forwarder over a purge log of its own, with `producers` watched producers (or the ones given). */
async function forwarding(producers: number | Producer[], failAt?: number) {
  const logKey = ownPurgeLogKey();
  const watch: Watch = { inFlight: 0, most: 0, sends: [] };
  const errors: unknown[] = [];
  const bus = await RedisStreamPurgeBus.open({ client, retainedEntries: 10_000, retentionSeconds: 3600, key: logKey });
  const forwarder = new RegionForwarder({
    client,
    logKey,
    region: 'a',
    replicaId: uniqueName('pool'),
    producers: Array.isArray(producers)
      ? producers
      : Array.from({ length: producers }, (_, i) => watched(watch, i, failAt)),
    topic,
    leaseMs: 3_000,
    blockMs: 200,
    batchSize: 4,
    logger: quiet,
    events: { onError: (error) => errors.push(error) },
  });
  cleanups.push(async () => {
    await forwarder.close();
    await bus.close();
  });
  forwarder.start();
  await eventually('the forwarder holds the lease', () => forwarder.status().leader, 10_000);
  const ns = uniqueName('pool');
  /** Logs `writes` purges over `keys` keys, ten at a time; resolves with their count. */
  const write = async (writes: number, keys: number) => {
    for (let i = 0; i < writes; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, writes - i) }, (_, j) =>
          bus.publish({
            namespace: ns,
            keys: [`k${(i + j) % keys}`],
            tags: [],
            prefix: null,
            version: i + j + 1,
            action: 'update',
            ts: Date.now(),
          }),
        ),
      );
    }
    return writes;
  };
  const pending = async () => Number(((await client.xpending(`${logKey}:stream`, forwarderGroup)) as [number])[0] ?? 0);
  return { forwarder, bus, watch, errors, ns, write, pending };
}

describe('region forwarder with several producers', () => {
  it('many events over several keys leave through several producers at once and arrive in log order per key', async () => {
    const { forwarder, watch, ns, write, pending } = await forwarding(4);
    const writes = await write(200, 12);
    const events = await topicEvents(brokers, topic, ns, (seen) => distinctIds(seen) >= writes, 40_000);
    expect(distinctIds(events)).toBe(writes);
    const perKey = firstOccurrencesPerKey(events);
    expect(perKey.size).toBe(12);
    for (const sequence of perKey.values()) expect(increasing(sequence)).toBe(true);
    // Several producers carried keys (all 12 keys on one of 4 has odds of 1 in 4 million), several sends at a time.
    expect(watch.sends.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(watch.most).toBeGreaterThan(1);
    await eventually('nothing left pending in the log', async () => (await pending()) === 0, 10_000);
    expect(forwarder.status().unforwardedSince).toBe(0);
    expect(forwarder.status().lastError).toBeNull();
  });

  it('a send failing mid-stream loses nothing and keeps log order per key', async () => {
    const { forwarder, errors, ns, write, pending, watch } = await forwarding(4, 3);
    const writes = await write(200, 12);
    const events = await topicEvents(brokers, topic, ns, (seen) => distinctIds(seen) >= writes, 40_000);
    expect(distinctIds(events)).toBe(writes);
    expect(errors.map((e) => (e as Error).message)).toContain('broker unreachable (test)');
    const perKey = firstOccurrencesPerKey(events);
    expect(perKey.size).toBe(12);
    for (const sequence of perKey.values()) expect(increasing(sequence)).toBe(true);
    // Producers whose third send failed were used again after the re-read.
    expect(watch.sends.some((n) => n > 3)).toBe(true);
    await eventually('nothing left pending in the log', async () => (await pending()) === 0, 10_000);
    await eventually('the forwarder reports no error', () => forwarder.status().lastError === null, 10_000);
    expect(forwarder.status().unforwardedSince).toBe(0);
  });

  it('a purge leaves through an idle producer while another key’s send is in flight, and that key’s next purge waits behind it', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const order: string[] = [];
    /** Producer `index`'s first send waits for the gate (a produce whose acknowledgement is slow). */
    const producer = (index: number): Producer => {
      const real = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      let calls = 0;
      return {
        ...real,
        async send(record) {
          calls += 1;
          if (index === 0 && calls === 1) await gate;
          order.push(...record.messages.map((m) => String(m.key)));
          return await real.send(record);
        },
      };
    };
    const { forwarder, bus, ns } = await forwarding([producer(0), producer(1)]);
    cleanups.push(async () => release());
    const purge = (key: string, version: number) =>
      bus.publish({ namespace: ns, keys: [key], tags: [], prefix: null, version, action: 'update', ts: Date.now() });
    await purge('slow', 1);
    await eventually('the first send to be held', () => forwarder.status().unforwardedSince > 0, 10_000);
    await purge('fast', 2);
    await purge('slow', 3);
    // 'fast' reaches Kafka while 'slow' is still held on the other producer.
    const early = await topicEvents(brokers, topic, ns, (seen) => seen.some((e) => e.key === `${ns}:fast`), 20_000);
    expect(early.map((e) => e.key)).toEqual([`${ns}:fast`]);
    release();
    const events = await topicEvents(brokers, topic, ns, (seen) => distinctIds(seen) >= 3, 20_000);
    expect(distinctIds(events)).toBe(3);
    // The second 'slow' went behind the first, on the same producer, so its order held.
    const slow = firstOccurrencesPerKey(events).get(`${ns}:slow`)!;
    expect(slow.length).toBe(2);
    expect(increasing(slow)).toBe(true);
    expect(order.filter((k) => k === `${ns}:slow`).length).toBe(2);
  });
});
