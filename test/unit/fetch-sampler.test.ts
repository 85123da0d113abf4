import type { KafkaMessage } from 'kafkajs';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { FetchedPartition, KafkaBroker, KafkaCluster } from '../../origin/kafka/cluster.ts';
import { type FetchSampler, fetchSampler, type SampleDelivery } from '../../origin/kafka/fetch-sampler.ts';
import { eventually } from '../support/wait.ts';

/**
 * One broker in memory: a log per partition, committed offsets, and fetches
 * answered after a random delay of up to 4 ms, so several lanes' fetches are
 * in flight at once and their answers overlap and arrive out of order.
 */
function fakeBroker(partitions: number) {
  const logs = Array.from({ length: partitions }, () => [] as KafkaMessage[]);
  const committed = new Map<number, number>();
  const fetched = new Set<number>();
  let clusters = 0;
  const broker: KafkaBroker = {
    async fetch(request) {
      await new Promise((r) => setTimeout(r, Math.random() * 4));
      const out: FetchedPartition[] = [];
      for (const p of request.topics[0]!.partitions) {
        fetched.add(p.partition);
        const log = logs[p.partition]!;
        const messages = log.filter((m) => Number(m.offset) >= Number(p.fetchOffset));
        out.push({
          partition: p.partition,
          highWatermark: String(log.length),
          messages,
          abortedTransactions: [],
        } as never);
      }
      return { responses: [{ topicName: 'topic', partitions: out }] };
    },
    async offsetFetch(request) {
      const parts = request.topics[0]!.partitions.map(({ partition }) => ({
        partition,
        offset: String(committed.get(partition) ?? -1),
      }));
      return { responses: [{ topic: 'topic', partitions: parts }] };
    },
  };
  const cluster = (): KafkaCluster => {
    clusters++;
    return {
      connect: async () => {},
      disconnect: async () => {},
      addTargetTopic: async () => {},
      refreshMetadata: async () => {},
      findLeaderForPartitions: (_topic, ps) => ({ '1': ps }),
      findBroker: async () => broker,
      findGroupCoordinator: async () => broker,
    };
  };
  const append = (partition: number, key: string) => {
    const log = logs[partition]!;
    log.push({
      offset: String(log.length),
      key: Buffer.from(key),
      value: Buffer.from(key),
      headers: {},
      timestamp: String(Date.now()),
      attributes: 0,
      isControlRecord: false,
    } as KafkaMessage);
  };
  return { logs, committed, fetched, append, cluster, clusters: () => clusters };
}

describe('fetch sampler (fake broker)', () => {
  const running: FetchSampler[] = [];
  afterEach(async () => {
    for (const s of running.splice(0)) await s.stop();
  });

  const start = (
    broker: ReturnType<typeof fakeBroker>,
    deliver: (partition: number, messages: readonly KafkaMessage[]) => Promise<SampleDelivery>,
  ) => {
    const sampler = fetchSampler({
      connection: { brokers: ['127.0.0.1:9'], clientId: 'test' },
      topic: 'topic',
      groupId: 'group',
      intervalMs: 1,
      maxLanes: 4,
      logger: pino({ level: 'silent' }),
      deliver,
      cluster: broker.cluster,
    });
    running.push(sampler);
    sampler.start();
    return sampler;
  };

  it('delivers each record once and in offset order, though several fetches overlap', async () => {
    const broker = fakeBroker(1);
    broker.committed.set(0, 0);
    const delivered: string[] = [];
    let concurrent = 0;
    let overlapped = false;
    const sampler = start(broker, async (_p, messages) => {
      overlapped ||= ++concurrent > 1;
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      delivered.push(...messages.map((m) => m.offset));
      concurrent--;
      return { done: messages.length };
    });
    sampler.assign([0]);
    await eventually('more than one lane open', () => broker.clusters() > 1, 5_000);
    for (let i = 0; i < 200; i++) {
      broker.append(0, `k${i % 7}`);
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await eventually('every record delivered', () => delivered.length >= 200, 5_000);
    expect(delivered).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
    expect(overlapped).toBe(false);
  });

  it('starts at the group committed offset, or at the consumer hand-over without one; unassigned partitions are never fetched', async () => {
    const broker = fakeBroker(3);
    for (let i = 0; i < 5; i++) {
      broker.append(0, 'a');
      broker.append(1, 'b');
      broker.append(2, 'c');
    }
    broker.committed.set(0, 3);
    const delivered: [number, string][] = [];
    const sampler = start(broker, async (p, messages) => {
      delivered.push(...messages.map((m) => [p, m.offset] as [number, string]));
      return { done: messages.length };
    });
    sampler.assign([0, 1]);
    await eventually('partition 0 read from its committed offset', () => delivered.length >= 2, 5_000);
    broker.append(0, 'a');
    broker.append(1, 'b');
    broker.append(2, 'c');
    await eventually('the new record of partition 0', () => delivered.length >= 3, 5_000);
    // No committed offset of partition 1: nothing read of it before the consumer hands over.
    expect([...broker.fetched]).toEqual([0]);
    // The consumer handed over offsets 0-2 of partition 1: the sampler reads on from 3.
    sampler.advance(1, '3');
    await eventually('partition 1 read from the hand-over', () => delivered.length >= 6, 5_000);
    expect(delivered).toEqual([
      [0, '3'],
      [0, '4'],
      [0, '5'],
      [1, '3'],
      [1, '4'],
      [1, '5'],
    ]);
    expect([...broker.fetched].sort()).toEqual([0, 1]);
  });

  it('holds at a record left to the consumer until the consumer hands over records past it, then reads on after them', async () => {
    const broker = fakeBroker(1);
    broker.committed.set(0, 0);
    const delivered: string[] = [];
    const sampler = start(broker, async (_p, messages) => {
      const poison = messages.findIndex((m) => m.value?.toString() === 'poison');
      const done = poison === -1 ? messages.length : poison;
      delivered.push(...messages.slice(0, done).map((m) => m.offset));
      return poison === -1 ? { done } : { done, stop: 'leave' };
    });
    sampler.assign([0]);
    broker.append(0, 'ok');
    broker.append(0, 'poison');
    broker.append(0, 'ok');
    await eventually('held at the poison record', () => sampler.held(0), 5_000);
    expect(delivered).toEqual(['0']);
    // The consumer handed over offsets 1 and 2 (it dead-letters 1 and applies 2): the sampler reads on from 3.
    sampler.advance(0, '3');
    expect(sampler.held(0)).toBe(false);
    broker.append(0, 'ok');
    await eventually('the record after the hand-over delivered', () => delivered.length === 2, 5_000);
    expect(delivered).toEqual(['0', '3']);
  });

  it('after a failed delivery reads from the failed record again, never from answers already in flight past it', async () => {
    const broker = fakeBroker(1);
    broker.committed.set(0, 0);
    const delivered: string[] = [];
    let failures = 1;
    const sampler = start(broker, async (_p, messages) => {
      if (failures > 0) {
        failures--;
        // Fetches from past the failed records go out meanwhile; the record appended now is in the answers
        // still in flight when the delivery has failed.
        await eventually('fetches from past the failed records', () => broker.clusters() > 1, 5_000);
        await new Promise((r) => setTimeout(r, 5));
        broker.append(0, 'late');
        return { done: 0, stop: 'retry' };
      }
      delivered.push(...messages.map((m) => m.offset));
      return { done: messages.length };
    });
    sampler.assign([0]);
    for (const key of ['a', 'b', 'c']) broker.append(0, key);
    await eventually('every record delivered', () => delivered.includes('3'), 5_000);
    expect(delivered).toEqual(['0', '1', '2', '3']);
    // Records the consumer handed over are its own: the sampler reads on after them.
    sampler.advance(0, '6');
    for (let i = 0; i < 3; i++) broker.append(0, 'd');
    await eventually('the record after the hand-over', () => delivered.includes('6'), 5_000);
    expect(delivered).toEqual(['0', '1', '2', '3', '6']);
  });
});
