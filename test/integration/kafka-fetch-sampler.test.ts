import { createRequire } from 'node:module';
import { AssignerProtocol, Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { InvalidationApplier } from '../../origin/invalidation/applier.ts';
import type { PurgeBus } from '../../origin/purge/bus.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { connectProducer, createTopics, invalidation, purgeRecorder, uniqueName } from '../support/kafka.ts';
import { testKafkaSource } from '../support/kafka-source.ts';
import { eventually } from '../support/wait.ts';

const brokers = inject('kafkaBrokers');

/** A purge bus that holds the publish of one key until released (the consumer's apply of it then hangs). */
class HoldingBus extends InProcessPurgeBus {
  #holdKey: string | null = null;
  /** The held key's publish started. */
  holding = false;
  #release: () => void = () => {};
  #gate = Promise.resolve();
  /** Holds the publishes of `key` from now until {@link HoldingBus.release}. */
  hold(key: string) {
    this.#holdKey = key;
    this.holding = false;
    this.#gate = new Promise<void>((r) => (this.#release = r));
  }
  release() {
    this.#release();
  }
  override async publish(input: Parameters<PurgeBus['publish']>[0]) {
    if (input.keys[0] === this.#holdKey) {
      this.holding = true;
      await this.#gate;
    }
    return await super.publish(input);
  }
}

const require = createRequire(import.meta.url);
type LogEndLookUp = (topics: { topic: string }[]) => Promise<unknown>;
/** kafkajs's cluster, which both the group consumer and the fetch sampler read log ends with. */
const Cluster = require('kafkajs/src/cluster') as { prototype: { fetchTopicsOffset: LogEndLookUp } };

/**
 * Holds every log-end (or log-start) look-up of `topic` that the fetch
 * sampler makes itself (told by its stack) until `open()`; the group
 * consumer's pass. Puts the gap between the consumer's start and one the
 * sampler might pick at a moment the test chooses.
 */
function holdSamplerLogEndLookUps(topic: string) {
  const original = Cluster.prototype.fetchTopicsOffset;
  let open = () => {};
  const opened = new Promise<void>((r) => (open = r));
  let inFlight = 0;
  Cluster.prototype.fetchTopicsOffset = async function (this: unknown, topics) {
    if (!topics.some((t) => t.topic === topic) || !new Error().stack?.includes('/kafka/fetch-sampler.ts'))
      return await original.call(this, topics);
    inFlight++;
    try {
      await opened;
      return await original.call(this, topics);
    } finally {
      inFlight--;
    }
  };
  return {
    open,
    /** The sampler's look-ups held or under way. */
    inFlight: () => inFlight,
    restore() {
      Cluster.prototype.fetchTopicsOffset = original;
    },
  };
}

/** One replica: a Kafka source in `groupId` applying through its own applier, service and bus. */
function replica(
  topic: string,
  groupId: string,
  clientId: string,
  fetchSampleMs: number | undefined,
  fromBeginning = true,
) {
  const bus = new HoldingBus({ retainedEntries: 1_000 });
  const { service, applied } = purgeRecorder(bus);
  const counts = { sampled: 0, deadLettered: 0, fetched: new Map<number, number>() };
  const source = testKafkaSource(brokers, clientId, {
    topic,
    groupId,
    fromBeginning,
    applier: new InvalidationApplier({ service, dedupWindow: 1_000 }),
    fetchSampleMs,
    onSampled: () => counts.sampled++,
    onDeadLetter: () => counts.deadLettered++,
    onBatchFetched: (p) => counts.fetched.set(p, (counts.fetched.get(p) ?? 0) + 1),
  });
  return { bus, source, applied, counts };
}

async function setup(partitions: number) {
  const topic = uniqueName('sampler');
  const groupId = uniqueName('sampler-group');
  await createTopics(brokers, topic, partitions);
  const producer = await connectProducer(brokers);
  const admin = new Kafka({ clientId: 'strata-sampler-admin', brokers: [brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const send = (partition: number, messageKey: string, key: string) =>
    producer.send({
      topic,
      messages: [{ partition, key: messageKey, value: JSON.stringify(invalidation({ namespace: 'ns', keys: [key] })) }],
    });
  const committed = async () => {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  };
  return { topic, groupId, producer, admin, send, committed };
}
type Setup = Awaited<ReturnType<typeof setup>>;
type Replica = ReturnType<typeof replica>;

describe('Kafka fetch sampler (real broker)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /**
   * Holds the apply of `held` (sent to partition 0), then has the consumer
   * fetch `blocker` (partition 0's next event): its batch handler waits for
   * the held apply, so kafkajs sends no next fetch of any partition until
   * `r.bus.release()`.
   */
  const stallConsumer = async (s: Setup, r: Replica, held: string, blocker: string) => {
    r.bus.hold(held);
    await s.send(0, `ns:${held}`, held);
    await eventually(`the apply of ${held} held`, () => r.bus.holding, 20_000);
    const before = r.counts.fetched.get(0) ?? 0;
    await s.send(0, `ns:${blocker}`, blocker);
    await eventually(
      'the consumer fetched the next batch of partition 0',
      () => (r.counts.fetched.get(0) ?? 0) > before,
      20_000,
    );
  };

  /**
   * Partition 0's apply is held, and a second event of partition 0 fetched:
   * the consumer's batch handler waits for the held apply, so kafkajs sends no
   * next fetch. Then four events go to partition 1 (two keys, two each).
   * With the sampler on, the group has committed offsets to start it from.
   */
  const heldFetch = async (fetchSampleMs: number | undefined) => {
    const s = await setup(2);
    const r = replica(s.topic, s.groupId, 'strata-sampler-test', fetchSampleMs);
    cleanups.push(async () => {
      r.bus.release();
      await r.source.stop();
      await s.producer.disconnect();
      await s.admin.disconnect();
    });
    // A group that committed before (offset 0 of both partitions): the sampler starts there, not at a hand-over.
    if (fetchSampleMs !== undefined)
      await s.admin.setOffsets({
        groupId: s.groupId,
        topic: s.topic,
        partitions: [0, 1].map((partition) => ({ partition, offset: '0' })),
      });
    await r.source.start();
    await r.source.ready(30_000);
    await stallConsumer(s, r, 'held', 'blocker');
    for (const key of ['a1', 'b1', 'a2', 'b2']) await s.send(1, `ns:${key[0]}`, key);
    return { s, r };
  };

  it('applies events of an assigned partition while the group consumer fetches nothing, in per-key order, each once; the consumer still commits past them', async () => {
    const { s, r } = await heldFetch(5);
    await eventually('partition 1 applied while partition 0 is held', () => r.applied.length === 4, 20_000);
    // No batch of partition 1 reached the consumer's handler: the sampler applied all four, first.
    expect(r.counts.fetched.get(1) ?? 0).toBe(0);
    expect(r.counts.sampled).toBe(4);
    expect(r.applied.filter((k) => k.startsWith('a'))).toEqual(['a1', 'a2']);
    expect(r.applied.filter((k) => k.startsWith('b'))).toEqual(['b1', 'b2']);
    r.bus.release();
    await eventually('the held events applied', () => r.applied.length === 6, 20_000);
    expect(new Set(r.applied).size).toBe(6);
    expect(r.applied.slice(4)).toEqual(['held', 'blocker']);
    // The consumer read partition 1 as well (skipping what was applied) and committed past it.
    await eventually(
      'offsets committed past the sampled events',
      async () => {
        const offsets = await s.committed();
        return offsets.get(0) === 2 && offsets.get(1) === 4;
      },
      20_000,
    );
    expect(r.applied).toHaveLength(6);
  });

  it('starts a partition without a committed offset where the group consumer hands over, so a later event of a key never overtakes one the consumer starts before', async () => {
    const s = await setup(3);
    const r = replica(s.topic, s.groupId, 'strata-sampler-new-group', 5, false);
    const lookUps = holdSamplerLogEndLookUps(s.topic);
    cleanups.push(async () => {
      lookUps.open();
      lookUps.restore();
      r.bus.release();
      await r.source.stop();
      await s.producer.disconnect();
      await s.admin.disconnect();
    });
    const fetched = (partition: number) => r.counts.fetched.get(partition) ?? 0;
    // A new group at the log end: every partition starts where the consumer resolved it on joining.
    await r.source.start();
    await r.source.ready(30_000);
    // Partition 2 is handed over once, so the sampler reads it from then on: its event below marks a sampling fetch.
    await s.send(2, 'ns:warm', 'warm');
    await eventually('the warm-up event applied', () => r.applied.includes('warm'), 20_000);
    await stallConsumer(s, r, 'held', 'blocker');
    // k1 lies after the consumer's start of partition 1; a start the sampler looked up only now would lie after it.
    await s.send(1, 'ns:k', 'k1');
    lookUps.open();
    await eventually('no look-up of the sampler under way', () => lookUps.inFlight() === 0, 20_000);
    await s.send(1, 'ns:k', 'k2');
    await s.send(2, 'ns:mark', 'mark');
    await eventually('a sampling fetch past k2 applied', () => r.applied.includes('mark'), 20_000);
    expect(fetched(1)).toBe(0);
    r.bus.release();
    await eventually(
      'both events of key k applied',
      () => r.applied.includes('k1') && r.applied.includes('k2'),
      20_000,
    );
    expect(r.applied.filter((k) => k.startsWith('k'))).toEqual(['k1', 'k2']);

    // The consumer has handed over partition 1 (k1, k2): the sampler reads it from there while the consumer is stalled.
    await eventually('the stalled events applied', () => r.applied.includes('blocker'), 20_000);
    await stallConsumer(s, r, 'held-again', 'blocker-again');
    const sampled = r.counts.sampled;
    const before = fetched(1);
    await s.send(1, 'ns:k', 'k3');
    await eventually('k3 applied while the consumer fetches nothing', () => r.applied.includes('k3'), 20_000);
    expect(fetched(1)).toBe(before);
    expect(r.counts.sampled).toBe(sampled + 1);
    expect(r.applied.filter((k) => k.startsWith('k'))).toEqual(['k1', 'k2', 'k3']);
  });

  it('off by default: events of another partition wait for the held apply, as before', async () => {
    const { r } = await heldFetch(undefined);
    r.bus.release();
    await eventually('every event applied', () => r.applied.length === 6, 20_000);
    // Nothing could apply partition 1 before the consumer's fetch loop moved on, which needed the held apply.
    expect(r.applied[0]).toBe('held');
    expect(new Set(r.applied).size).toBe(6);
    expect(r.applied.filter((k) => k.startsWith('a'))).toEqual(['a1', 'a2']);
    expect(r.counts.sampled).toBe(0);
  });

  it('leaves a poison message to the consumer, which dead-letters it once; the events around it are applied once, in order', async () => {
    const s = await setup(1);
    const r = replica(s.topic, s.groupId, 'strata-sampler-poison', 5);
    cleanups.push(async () => {
      await r.source.stop();
      await s.producer.disconnect();
      await s.admin.disconnect();
    });
    await r.source.start();
    await r.source.ready(30_000);
    await s.send(0, 'ns:k', 'before');
    await s.producer.send({ topic: s.topic, messages: [{ partition: 0, key: 'ns:k', value: '{not json' }] });
    await s.send(0, 'ns:k', 'after');
    await eventually('both events applied', () => r.applied.length === 2, 20_000);
    expect(r.applied).toEqual(['before', 'after']);
    await eventually('the poison message dead-lettered', () => r.counts.deadLettered === 1, 20_000);
    await eventually('offsets committed past all three', async () => (await s.committed()).get(0) === 3, 20_000);
    expect(r.counts.deadLettered).toBe(1);
    expect(r.applied).toEqual(['before', 'after']);
  });

  it('samples only the partitions assigned to its replica', async () => {
    const s = await setup(2);
    const a = replica(s.topic, s.groupId, 'strata-sampler-a', 5);
    const b = replica(s.topic, s.groupId, 'strata-sampler-b', 5);
    cleanups.push(async () => {
      await a.source.stop();
      await b.source.stop();
      await s.producer.disconnect();
      await s.admin.disconnect();
    });
    await a.source.start();
    await b.source.start();
    await a.source.ready(30_000);
    await b.source.ready(30_000);
    /** Partitions of each client id once the group is stable with both members. */
    const owners = new Map<string, number[]>();
    await eventually(
      'a stable group of two, one partition each',
      async () => {
        const { groups } = await s.admin.describeGroups([s.groupId]);
        const g = groups[0];
        if (g?.state !== 'Stable' || g.members.length !== 2) return false;
        owners.clear();
        for (const m of g.members) {
          const assignment = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
          owners.set(m.clientId, assignment?.assignment[s.topic] ?? []);
        }
        return [...owners.values()].every((p) => p.length === 1);
      },
      30_000,
    );
    const sent = new Map<number, string[]>([
      [0, []],
      [1, []],
    ]);
    for (let i = 0; i < 10; i++) {
      const partition = i % 2;
      const key = `p${partition}-${i}`;
      sent.get(partition)!.push(key);
      await s.send(partition, `ns:${key}`, key);
    }
    await eventually(
      'every event applied in the group',
      () => new Set([...a.applied, ...b.applied]).size === 10,
      30_000,
    );
    const [pa] = owners.get('strata-sampler-a')!;
    const [pb] = owners.get('strata-sampler-b')!;
    expect([...a.applied].sort()).toEqual([...sent.get(pa!)!].sort());
    expect([...b.applied].sort()).toEqual([...sent.get(pb!)!].sort());
  });
});
