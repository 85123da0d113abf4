import {
  type Consumer,
  type EachBatchPayload,
  type KafkaMessage,
  type Message,
  Partitioners,
  type Producer,
} from 'kafkajs';
import type { Logger } from 'pino';
import type { InvalidationEvent } from '../../shared/schemas.ts';
import { withConsumerSpan } from '../../shared/tracing.ts';
import { type KafkaConnection, kafkaClient } from '../kafka/client.ts';
import { consumerRelauncher, flowLatch, groupConsumerConfig } from '../kafka/consumer.ts';
import { type FetchSampler, fetchSampler, type SampleDelivery } from '../kafka/fetch-sampler.ts';
import { type HeartbeatAhead, heartbeatAhead } from '../kafka/heartbeat-ahead.ts';
import { type OffsetCommitter, offsetCommitter } from '../kafka/offset-committer.ts';
import type { InvalidationApplier } from './applier.ts';
import { decodeInvalidation, decodeRegionReset } from './applier.ts';
import { ensureTopics } from './kafka-topics.ts';
import { applyInKeyOrder } from './partition-scheduler.ts';
import type { InvalidationSource } from './source.ts';

/** Header on a dead-lettered message: why it was rejected (one line). */
export const dlqReasonHeader = 'strata-error';
/** Headers on a dead-lettered message naming where it came from. */
export const dlqOriginHeaders = {
  topic: 'strata-source-topic',
  partition: 'strata-source-partition',
  offset: 'strata-source-offset',
} as const;

/**
 * A dead letter of `message`, read at `partition` of `topic`: its key, value
 * and headers, plus {@link dlqReasonHeader} (`reason`, one line) and
 * {@link dlqOriginHeaders}.
 */
export function deadLetterOf(topic: string, partition: number, message: KafkaMessage, reason: string): Message {
  return {
    key: message.key,
    value: message.value,
    headers: {
      ...message.headers,
      [dlqReasonHeader]: reason,
      [dlqOriginHeaders.topic]: topic,
      [dlqOriginHeaders.partition]: String(partition),
      [dlqOriginHeaders.offset]: message.offset,
    },
  };
}

export interface KafkaSourceOptions {
  /** Brokers and client id (`KAFKA_BROKERS`, `KAFKA_CLIENT_ID`). */
  readonly connection: KafkaConnection;
  /** Topic of invalidation events (`KAFKA_INVALIDATION_TOPIC`). */
  readonly topic: string;
  /** Consumer group (`KAFKA_GROUP_ID`). */
  readonly groupId: string;
  /** Dead-letter topic; default `<topic>.dlq`. */
  readonly dlqTopic?: string | undefined;
  /** A group without a committed offset starts at the oldest event when true, else at new ones. */
  readonly fromBeginning: boolean;
  /** Milliseconds; the broker evicts a silent member after this (broker minimum 6 000). */
  readonly sessionTimeoutMs: number;
  /** Milliseconds between heartbeats. */
  readonly heartbeatIntervalMs: number;
  readonly applier: InvalidationApplier;
  readonly logger: Logger;
  /** Told about each message sent to the dead-letter topic. */
  readonly onDeadLetter?: (reason: string) => void;
  /** Told, after each batch, how many messages of `partition` are still behind its high watermark. */
  readonly onLag?: (partition: number, messages: number) => void;
  /**
   * Told whenever the consumer had read everything the broker held for it
   * (a fetch came back empty) and applied all of it (no apply still running).
   */
  readonly onCaughtUp?: () => void;
  /**
   * Milliseconds between sampling fetches of this replica's partitions
   * beside the group consumer (`KAFKA_FETCH_SAMPLE_MS`, {@link fetchSampler});
   * 0 or absent = off.
   */
  readonly fetchSampleMs?: number;
  /** Told about each event the fetch sampler applied before the group consumer did. */
  readonly onSampled?: () => void;
  /**
   * Told when the group consumer's fetch brought a batch of `partition` to
   * its handler, before the handler waits for that partition's previous
   * apply (while it waits, kafkajs sends no next fetch).
   */
  readonly onBatchFetched?: (partition: number) => void;
}

/** The Kafka invalidation source, with what tests and operators may inspect. */
export interface KafkaSource extends InvalidationSource {
  readonly kind: 'kafka';
  readonly topic: string;
  readonly dlqTopic: string;
}

// Back-off while the store or the DLQ producer fails: the partition waits rather than skip an event.
const retryMinMs = 100;
const retryMaxMs = 2_000;
/** Milliseconds `stop()` waits for background offset commits before leaving the group. */
const commitFlushMs = 3_000;
/** Messages of one partition in flight at once (distinct keys only); bounds store concurrency. */
const chunkSize = 64;
/** Per-key order follows the Kafka message key (read as latin1: one character per byte, so distinct keys stay distinct). */
const messageKey = (message: KafkaMessage) => message.key?.toString('latin1') ?? '';

/**
 * Consumes invalidation events with kafkajs in consumer group `groupId` and
 * applies each through the {@link InvalidationApplier} (ARCHITECTURE.md §4).
 *
 * - **At-least-once**: auto-commit is off. A batch is handed over to its
 *   apply and its fetch position resolved at once, so the next fetch waits at
 *   the broker during the apply (one batch per partition in apply; the next
 *   waits for it). Offsets are committed only after the applier purged the
 *   store and handed the purge to the purge bus: in the background
 *   ({@link offsetCommitter}), so the next fetch is not held back by a
 *   coordinator round trip, and at once when the apply is cut short
 *   (shutdown, rebalance). An apply that throws seeks its partition back to
 *   its first message not done. A crash re-delivers at most the uncommitted
 *   tail, which idempotency by `id` and idempotent purges absorb.
 * - **Order**: producers key messages by `namespace` or `namespace:key`, so
 *   one key's events share a partition. Partitions are processed in
 *   parallel; within one, up to 64 messages at a time are applied
 *   concurrently when their message keys differ, and strictly in offset
 *   order when they share one. Only a done prefix of offsets is committed.
 * - **Poison messages**: an undecodable or invalid value is produced to the
 *   dead-letter topic (original key, value and headers, plus
 *   {@link dlqReasonHeader} and {@link dlqOriginHeaders}) and its offset is
 *   resolved, so the partition moves on.
 * - **Failures**: while the store (or the DLQ produce) fails the message is
 *   retried with back-off and heartbeats, never skipped. When kafkajs gives up
 *   after a broker outage without restarting itself, the consumer is rebuilt.
 * - **Shutdown**: `stop()` lets the batch in hand finish, commits, and leaves
 *   the group (LeaveGroup), so the partitions move to a peer at once.
 *
 * The client is kafkajs 2.x; `@confluentinc/kafka-javascript` offers the same
 * API should it need swapping, behind the same {@link InvalidationSource}.
 */
export function kafkaSource(options: KafkaSourceOptions): KafkaSource {
  const { topic, applier, logger } = options;
  const dlqTopic = options.dlqTopic ?? `${topic}.dlq`;
  const kafka = kafkaClient(options.connection, {
    logger,
    connectionTimeoutMs: 3_000,
    retry: { initialRetryTime: 200, maxRetryTime: 3_000, retries: 10 },
  });
  const producer: Producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  let committer: OffsetCommitter | undefined;
  /** Per partition, the apply of the batch handed over last (the current consumer's). */
  let behind = new Map<number, Promise<void>>();
  let stopping = false;
  const flowing = flowLatch();
  /** Bumped per consumer built: events of a consumer no longer in use do not touch the sampler. */
  let launches = 0;

  /**
   * Applies what the fetch sampler read of `partition`, after the group
   * consumer's apply in hand for it ended, in per-key order. Only
   * invalidation events: the first message that is not one (poison, a region
   * reset) and everything after it is left to the consumer. A failed apply
   * is left for the sampler to read again (the applier's dedup, which covers
   * applies in flight, keeps each event applied once).
   */
  const deliverSample = async (partition: number, messages: readonly KafkaMessage[]): Promise<SampleDelivery> => {
    await behind.get(partition);
    if (stopping || sampler?.held(partition)) return { done: 0, stop: 'retry' };
    const events: { message: KafkaMessage; event: InvalidationEvent }[] = [];
    for (const message of messages) {
      const decoded = decodeInvalidation(message.value);
      if (!decoded.ok) break;
      events.push({ message, event: decoded.event });
    }
    const done = await applyInKeyOrder(
      events,
      ({ message }) => messageKey(message),
      async ({ message, event }) => {
        try {
          const outcome = await withConsumerSpan(message.headers, { topic, partition, offset: message.offset }, () =>
            applier.apply(event, 'kafka'),
          );
          if (outcome === 'applied') options.onSampled?.();
          return true;
        } catch (error) {
          // The group consumer retries (and logs) the same event; the sampler reads it again after a back-off.
          logger.debug({ err: error, topic, partition, offset: message.offset }, 'sampled event not applied');
          return false;
        }
      },
    );
    if (done < events.length) return { done, stop: 'retry' };
    return events.length < messages.length ? { done, stop: 'leave' } : { done };
  };
  const sampler: FetchSampler | undefined = options.fetchSampleMs
    ? fetchSampler({
        connection: options.connection,
        topic,
        groupId: options.groupId,
        intervalMs: options.fetchSampleMs,
        logger,
        deliver: deliverSample,
      })
    : undefined;

  /** Retries `attempt` until it succeeds or this partition's batch must end; false when it must end. */
  const persist = async (what: string, attempt: () => Promise<unknown>, p: EachBatchPayload): Promise<boolean> => {
    let delay = retryMinMs;
    for (;;) {
      if (stopping || !p.isRunning() || p.isStale()) return false;
      try {
        await attempt();
        return true;
      } catch (error) {
        logger.warn({ err: error, topic, partition: p.batch.partition, retryInMs: delay }, `${what} failed; retrying`);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, retryMaxMs);
      await p.heartbeat().catch(() => {});
    }
  };

  const deadLetter = async (partition: number, message: KafkaMessage, reason: string) => {
    await producer.send({ topic: dlqTopic, messages: [deadLetterOf(topic, partition, message, reason)] });
  };

  /** Applies (or dead-letters) one message; false when the batch must end before it was done. */
  const handle = async (message: KafkaMessage, p: EachBatchPayload): Promise<boolean> => {
    const { partition } = p.batch;
    const decoded = decodeInvalidation(message.value);
    const reset = decoded.ok ? null : decodeRegionReset(message.value);
    if (reset) {
      logger.warn({ topic, partition, sourceRegion: reset.origin_region, reason: reset.reason }, 'region-wide reset');
      return await persist('applying a region reset', () => applier.applyReset(reset, 'kafka'), p);
    }
    if (decoded.ok) {
      // The purge (and its Redis calls) continue the producer's trace from the message's traceparent header.
      return await withConsumerSpan(message.headers, { topic, partition, offset: message.offset }, () =>
        persist('applying an invalidation', () => applier.apply(decoded.event, 'kafka'), p),
      );
    }
    const done = await persist('dead-lettering a message', () => deadLetter(partition, message, decoded.reason), p);
    if (done) {
      logger.warn({ topic, partition, offset: message.offset, reason: decoded.reason }, 'event dead-lettered');
      options.onDeadLetter?.(decoded.reason);
    }
    return done;
  };

  /**
   * Applies `messages` of one partition's batch (in chunks, per-key order) and
   * commits the done prefix after. The fetch position is not touched here:
   * the batch was resolved when it was handed over. When something fails
   * after the hand-over while the consumer runs on, the partition is sought
   * back to the first message not done, so it is fetched again, never skipped.
   * @returns whether every message of the batch was applied (false: cut short, or failed and fetched again).
   */
  const applyBatch = async (
    c: Consumer,
    committer: OffsetCommitter,
    p: EachBatchPayload,
    messages: readonly KafkaMessage[],
  ): Promise<boolean> => {
    const { partition } = p.batch;
    let next: string | null = null;
    let complete = false;
    try {
      for (let start = 0; start < messages.length; start += chunkSize) {
        const chunk = messages.slice(start, start + chunkSize);
        const done = await applyInKeyOrder(chunk, messageKey, (message) => handle(message, p));
        if (done > 0) next = (BigInt(chunk[done - 1]!.offset) + 1n).toString();
        if (done < chunk.length) break;
        // Between chunks only: the fetch loop heartbeats itself (and heartbeatAhead while a fetch waits).
        if (start + chunkSize < messages.length) await p.heartbeat();
      }
      complete = true;
    } catch (error) {
      logger.error({ err: error, topic, partition }, 'applying a batch failed; fetching its rest again');
      // Later events must not overtake the ones fetched again: the sampler waits until they are handed over again.
      sampler?.hold(partition, messages[messages.length - 1]!.offset);
      if (!stopping && p.isRunning() && !p.isStale()) {
        const first = next ?? messages[0]!.offset;
        c.seek({ topic, partition, offset: first });
      }
    } finally {
      if (next !== null) {
        const offsets = { topics: [{ topic, partitions: [{ partition, offset: next }] }] };
        // A batch cut short (shutdown, rebalance, failure) commits before it ends, so a peer starts after it.
        if (complete && !stopping && p.isRunning() && !p.isStale())
          committer.commit(partition, next, () => p.commitOffsetsIfNecessary(offsets));
        else
          await committer
            .commitNow(partition, next, () => p.commitOffsetsIfNecessary(offsets))
            .catch((error: unknown) => logger.warn({ err: error, topic, partition }, 'offset commit failed'));
      }
    }
    return complete;
  };

  /**
   * An empty fetch says the consumer read everything the broker held, but
   * handed-over batches may still be applying (or hung): caught up is
   * reported only once none is, so `onCaughtUp` never counts an event as
   * applied before its apply ended. Set while an empty fetch waits for them.
   */
  let caughtUpOnceApplied = false;
  const caughtUp = () => {
    caughtUpOnceApplied = false;
    options.onCaughtUp?.();
  };

  /**
   * kafkajs fetches again only once every batch of a fetch was handled; an
   * apply awaited here would leave no fetch at the broker for the apply's
   * time on top of the round trip. So a batch is handed over: its fetch
   * position is resolved at once and its apply runs behind (depth one per
   * partition: the next batch of a partition waits here until the previous
   * one's apply ended, which keeps offset order, bounds memory to one batch
   * per partition, and holds the fetch loop, and with it the heartbeats,
   * when an apply hangs, as before). Offsets are committed only after the
   * apply (at-least-once).
   */
  const eachBatchOf =
    (c: Consumer, committer: OffsetCommitter, ahead: HeartbeatAhead, behind: Map<number, Promise<void>>) =>
    async (p: EachBatchPayload) => {
      ahead.use(p.heartbeat);
      const { partition, messages } = p.batch;
      options.onBatchFetched?.(partition);
      await behind.get(partition);
      if (stopping) {
        // Leaving: nothing new starts; the messages stay uncommitted for the partition's next owner.
        p.pause();
        return;
      }
      // Fetched before a seek back (an apply that failed) or a stop: fetched again from where that left it.
      if (messages.length === 0 || !p.isRunning() || p.isStale()) return;
      const last = messages[messages.length - 1]!.offset;
      p.resolveOffset(last);
      sampler?.advance(partition, (BigInt(last) + 1n).toString());
      options.onLag?.(partition, Number(p.batch.offsetLag()));
      const settled = (complete: boolean) => {
        if (behind.get(partition) === applying) behind.delete(partition);
        // A batch fetched again (a failed apply) is not caught up; the empty fetch after it will say so.
        if (!complete) caughtUpOnceApplied = false;
        else if (caughtUpOnceApplied && behind.size === 0) caughtUp();
      };
      const applying = applyBatch(c, committer, p, messages).then(settled, (error: unknown) => {
        settled(false);
        throw error;
      });
      behind.set(partition, applying);
    };

  const launch = async () => {
    const c = kafka.consumer(groupConsumerConfig(options));
    relauncher.adopt(c);
    committer = offsetCommitter(logger);
    // A consumer rebuilt after a crash: the old one's applies end with the attempt in hand (it is no longer
    // running) before the new one fetches, so one partition never has two applies at once.
    await Promise.all(behind.values());
    behind = new Map();
    const eachBatch = eachBatchOf(c, committer, heartbeatAhead(c, options.heartbeatIntervalMs), behind);
    // Idempotent; the DLQ producer must be up before the first poison message.
    await producer.connect();
    let joined = false;
    const built = ++launches;
    c.on(c.events.GROUP_JOIN, (e) => {
      joined = true;
      logger.info({ topic, groupId: options.groupId, assignment: e.payload.memberAssignment }, 'joined consumer group');
      if (built === launches) sampler?.assign(e.payload.memberAssignment[topic] ?? []);
    });
    // Between owning partitions and owning them again (or not), the sampler reads none.
    for (const event of [c.events.REBALANCING, c.events.STOP, c.events.CRASH, c.events.DISCONNECT] as const)
      c.on(event, () => {
        if (built === launches) sampler?.assign([]);
      });
    c.on(c.events.FETCH, (e) => {
      if (joined && e.payload.numberOfBatches === 0) {
        if (behind.size === 0) caughtUp();
        else caughtUpOnceApplied = true;
      }
      if (joined) {
        relauncher.healthy();
        flowing.open();
      }
    });
    // stop() may come while this is still connecting: never start consuming after it.
    const abandoned = async () => {
      if (!stopping) return false;
      await c.disconnect().catch(() => {});
      return true;
    };
    await c.connect();
    if (await abandoned()) return;
    await c.subscribe({ topic, fromBeginning: options.fromBeginning });
    if (await abandoned()) return;
    await c.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 3, eachBatch });
  };

  const relauncher = consumerRelauncher({
    name: 'kafka consumer',
    logger,
    launch,
  });

  const createTopics = async () => {
    // Convenience for development; production topics are usually provisioned, and this is then a no-op.
    const admin = kafka.admin();
    try {
      await admin.connect();
      await ensureTopics(
        admin,
        [
          { topic, numPartitions: 3 },
          { topic: dlqTopic, numPartitions: 1 },
        ],
        10_000,
      );
    } catch (error) {
      logger.warn({ err: error }, 'could not create the invalidation topics; consuming them anyway');
    } finally {
      await admin.disconnect().catch(() => {});
    }
  };

  return {
    kind: 'kafka',
    topic,
    dlqTopic,
    async start() {
      stopping = false;
      relauncher.arm();
      sampler?.start();
      // In the background: an origin starts (and serves reads) while the broker is still unreachable.
      void (async () => {
        await createTopics();
        if (!stopping) await launch();
      })().catch((error: unknown) => {
        logger.warn({ err: error, brokers: options.connection.brokers }, 'kafka not reachable yet; will keep trying');
        relauncher.schedule();
      });
    },
    async ready(timeoutMs = 30_000) {
      await flowing.wait(`kafka consumer did not start consuming ${topic}`, timeoutMs);
    },
    async stop() {
      stopping = true;
      // Never blocks the consumer's stop: the deliveries in hand end with the apply in hand.
      await sampler?.stop();
      await relauncher.stop();
      // The applies handed over finish the message in hand and commit what they did while the consumer is up.
      await Promise.all(behind.values());
      // Background commits go out before the group is left (bounded: a commit that cannot reach the broker
      // only means a successor re-reads the tail); disconnect() then stops fetching, waits for the batch in
      // hand (which commits) and leaves the group.
      if (committer) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([committer.flush(), new Promise((r) => (timer = setTimeout(r, commitFlushMs)))]);
        clearTimeout(timer);
      }
      await relauncher
        .release()
        ?.disconnect()
        .catch((error: unknown) => logger.warn({ err: error }, 'kafka consumer disconnect'));
      await producer.disconnect().catch(() => {});
    },
  };
}
