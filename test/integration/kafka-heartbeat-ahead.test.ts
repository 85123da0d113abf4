import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { groupConsumerConfig } from '../../origin/kafka/consumer.ts';
import { heartbeatAhead } from '../../origin/kafka/heartbeat-ahead.ts';
import { connectProducer, createTopics, uniqueName } from '../support/kafka.ts';
import { eventually } from '../support/wait.ts';

const heartbeatIntervalMs = 300;
/** Idle fetches wait this long at the broker, so several heartbeats fall due during each. */
const maxWaitTimeInMs = 1_500;

/**
 * A group consumer on `topic` that records, for each heartbeat it sent,
 * whether one of its fetches was in flight then (kafkajs's FETCH_START … FETCH).
 */
async function observed(brokers: string, topic: string, ahead: boolean) {
  const kafka = new Kafka({ clientId: 'strata-test', brokers: [brokers], logLevel: logLevel.NOTHING });
  const consumer: Consumer = kafka.consumer({
    ...groupConsumerConfig({ groupId: uniqueName('hb'), sessionTimeoutMs: 6_000, heartbeatIntervalMs }),
    maxWaitTimeInMs,
  });
  const helper = ahead ? heartbeatAhead(consumer, heartbeatIntervalMs) : null;
  let fetching = false;
  let batches = 0;
  const heartbeats: boolean[] = [];
  consumer.on(consumer.events.FETCH_START, () => {
    fetching = true;
  });
  consumer.on(consumer.events.FETCH, () => {
    fetching = false;
  });
  consumer.on(consumer.events.HEARTBEAT, () => {
    if (batches > 0) heartbeats.push(fetching);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async (p) => {
      helper?.use(p.heartbeat);
      batches += 1;
    },
  });
  return { consumer, heartbeats, batches: () => batches };
}

describe('group heartbeats off the fetch loop (heartbeatAhead) against a real broker', () => {
  const consumers: Consumer[] = [];
  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.disconnect().catch(() => {})));
  });

  it('kafkajs alone heartbeats between fetches (the next fetch waits for it); with heartbeatAhead they go out while a fetch waits at the broker', async () => {
    const brokers = inject('kafkaBrokers');
    const topic = uniqueName('heartbeat-ahead');
    await createTopics(brokers, topic, 1);
    const producer = await connectProducer(brokers);
    await producer.send({ topic, messages: [{ key: 'k', value: 'one batch hands over its heartbeat' }] });
    await producer.disconnect();

    const plain = await observed(brokers, topic, false);
    const ahead = await observed(brokers, topic, true);
    consumers.push(plain.consumer, ahead.consumer);
    await eventually(
      'eight heartbeats of each consumer after its first batch',
      () => plain.heartbeats.length >= 8 && ahead.heartbeats.length >= 8,
      30_000,
      50,
    );
    expect(plain.batches()).toBeGreaterThan(0);
    expect(ahead.batches()).toBeGreaterThan(0);
    // kafkajs sends its own heartbeat in the fetch loop: never while a fetch is in flight.
    expect(plain.heartbeats.filter((inFlight) => inFlight)).toEqual([]);
    // From the timer: while a fetch waits; one may fall due just as an idle fetch returned (the loop's own).
    const sample = ahead.heartbeats.slice(0, 8);
    expect(sample.filter((inFlight) => !inFlight).length).toBeLessThanOrEqual(1);
  });
});
