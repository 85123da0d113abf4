import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { InvalidationApplier } from '../../origin/invalidation/applier.ts';
import type { KafkaSource } from '../../origin/invalidation/kafka-source.ts';
import type { PurgeBus } from '../../origin/purge/bus.ts';
import { GatedBus } from '../conformance/invalidation-source.ts';
import { connectProducer, createTopics, invalidation, purgeRecorder, uniqueName } from '../support/kafka.ts';
import { testKafkaSource } from '../support/kafka-source.ts';
import { eventually } from '../support/wait.ts';

const brokers = inject('kafkaBrokers');

/** A bus whose publish can be made to fail a number of times (the store purge then fails its apply). */
class FlakyBus extends GatedBus {
  failures = 0;
  override async publish(input: Parameters<PurgeBus['publish']>[0]) {
    if (this.failures > 0) {
      this.failures--;
      this.entered++;
      throw new Error('purge log unreachable (test)');
    }
    return await super.publish(input);
  }
}

/**
 * A Kafka source over a one-partition topic, applying through a real applier
 * and cache service whose purge bus the test gates; what it applied is read
 * off the bus, what it committed from the group's offsets.
 */
async function setup() {
  const topic = uniqueName('handoff');
  const groupId = uniqueName('handoff-group');
  await createTopics(brokers, topic, 1);
  const bus = new FlakyBus({ retainedEntries: 1_000 });
  const { service, applied } = purgeRecorder(bus);
  let caughtUp = 0;
  let batches = 0;
  const source = testKafkaSource(brokers, 'strata-handoff-test', {
    topic,
    groupId,
    applier: new InvalidationApplier({ service, dedupWindow: 1_000 }),
    onCaughtUp: () => caughtUp++,
    onBatchFetched: () => batches++,
  });
  const producer = await connectProducer(brokers);
  const admin = new Kafka({ clientId: 'strata-handoff-admin', brokers: [brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const committed = async () => {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Number(t?.partitions[0]?.offset ?? -1);
  };
  const send = (key: string) =>
    producer.send({
      topic,
      messages: [{ key: 'ns', value: JSON.stringify(invalidation({ namespace: 'ns', keys: [key] })) }],
    });
  return {
    bus,
    source,
    applied,
    committed,
    send,
    caughtUp: () => caughtUp,
    batches: () => batches,
    /** Opens a gate the test left closed (a failed assertion), so stop() can finish the apply in hand. */
    release: () => {},
    async close() {
      this.release();
      await source.stop();
      await producer.disconnect();
      await admin.disconnect();
    },
  };
}

describe('Kafka source: the next fetch leaves before the apply (real broker)', () => {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });

  const started = async () => {
    const s = await setup();
    open.push(s);
    await s.source.start();
    await (s.source as KafkaSource).ready(30_000);
    return s;
  };

  it('while an apply is held, the consumer fetches again, but neither reports itself caught up nor commits past the held event until it was applied', async () => {
    const s = await started();
    s.bus.gate = new Promise<void>((r) => (s.release = r));
    await s.send('held');
    await eventually('the first event in hand', () => s.bus.entered > 0, 20_000);
    const before = s.caughtUp();
    const fetched = s.batches();
    // Several empty fetches' time (each waits at most 500 ms at the broker): none counts as caught up while held.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(s.caughtUp()).toBe(before);
    // The next event's batch is fetched while the apply is still held: the fetch loop was not waiting for it.
    await s.send('next');
    await eventually('the next batch fetched while the apply is held', () => s.batches() > fetched, 10_000);
    expect(s.applied).toEqual([]);
    expect(await s.committed()).toBeLessThan(1);
    expect(s.caughtUp()).toBe(before);
    s.release();
    await eventually('both events applied', () => s.applied.length === 2, 20_000);
    expect(s.applied).toEqual(['held', 'next']);
    await eventually('both offsets committed', async () => (await s.committed()) === 2, 10_000);
    await eventually('caught up once both were applied', () => s.caughtUp() > before, 10_000);
  });

  it('an apply that fails is retried, never skipped: later events wait for it, and its offset is committed after it succeeded', async () => {
    const s = await started();
    s.bus.failures = 3;
    await s.send('flaky');
    await s.send('after');
    await eventually('the failing apply retried and both events applied', () => s.applied.length === 2, 20_000);
    expect(s.bus.failures).toBe(0);
    expect(s.applied).toEqual(['flaky', 'after']);
    await eventually('both offsets committed', async () => (await s.committed()) === 2, 10_000);
  });
});
