import { type EachBatchPayload, type KafkaMessage, type Message, Partitioners, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { hubHeaders } from '../../shared/hub.ts';
import { deadLetterOf } from '../invalidation/kafka-source.ts';
import { ensureTopics } from '../invalidation/kafka-topics.ts';
import { applyInKeyOrder } from '../invalidation/partition-scheduler.ts';
import { type KafkaConnection, kafkaClient } from '../kafka/client.ts';
import { consumerRelauncher, flowLatch, groupConsumerConfig } from '../kafka/consumer.ts';
import type { HubMessage, HubOutcome } from './handler.ts';

/** Where the hub may be killed on purpose by a crash test (`HUB_FAULT`): after apply and record, before the commit. */
export type HubFault = 'crash-before-commit';

export interface HubConsumerOptions {
  readonly connection: KafkaConnection;
  /** Consumer group; also the prefix of every transactional id. */
  readonly groupId: string;
  /** Request topics consumed (`cache.operation.request`, `cache.management.request`). */
  readonly requestTopics: readonly string[];
  /** Response topics, created with the request topics when missing. */
  readonly responseTopics: readonly string[];
  /** Where messages nobody can be answered for go, with the reason. */
  readonly dlqTopic: string;
  readonly handle: (message: HubMessage) => Promise<HubOutcome>;
  readonly logger: Logger;
  /** Milliseconds; the broker evicts a silent member after this (broker minimum 6 000). */
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly fault?: HubFault | undefined;
  /** A group without a committed offset starts at the oldest request when true, else at new ones (`KAFKA_FROM_BEGINNING`). */
  readonly fromBeginning: boolean;
  /** Told of each message's fate. */
  readonly onOutcome?: (outcome: 'answered' | 'replayed' | 'dead_lettered') => void;
}

/** The running hub consumer. */
export interface HubConsumer {
  readonly groupId: string;
  start(): Promise<void>;
  /** Resolves once the consumer joined its group and fetched; rejects after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void>;
  /** Ends the batch in hand, leaves the group and closes every transactional producer. */
  stop(): Promise<void>;
}

/** Messages answered in one transaction at most. */
const chunkSize = 100;
const retryMinMs = 100;
const retryMaxMs = 2_000;

/**
 * The transactional id of one input partition's producer:
 * `<group>-<topic>-<partition>`. kafkajs 2.2.4 predates consumer-group
 * fencing (KIP-447), so zombies are fenced the older way (KIP-98): whoever
 * owns a partition now opens its producer under this id, which aborts the
 * open transaction of the previous owner and fences it.
 */
export const transactionalIdOf = (groupId: string, topic: string, partition: number) =>
  `${groupId}-${topic}-${partition}`;

/**
 * Consumes hub requests and answers each exactly once: per input partition,
 * a chunk of up to 100 requests is handled (distinct message keys
 * concurrently, one key's requests in offset order), and their responses (or
 * dead-letters) are produced together with the consumed offsets in one Kafka
 * transaction (`sendOffsets`), committed or aborted as one. A crash before
 * the commit aborts the transaction: the responses are never seen by a
 * `read_committed` reader and the requests are delivered again, when the
 * handler's dedup records answer every change already applied with its
 * recorded response instead of applying it twice.
 */
export function hubConsumer(options: HubConsumerOptions): HubConsumer {
  const { groupId, logger } = options;
  const kafka = kafkaClient(options.connection, {
    logger,
    connectionTimeoutMs: 3_000,
    // Short first retry: a transaction begun right after a commit often meets CONCURRENT_TRANSACTIONS until the
    // previous markers are written (a few ms), which kafkajs retries on this schedule.
    retry: { initialRetryTime: 10, maxRetryTime: 3_000, retries: 12 },
  });
  const producers = new Map<string, Promise<Producer>>();
  let stopping = false;
  const flowing = flowLatch();

  const producerFor = (topic: string, partition: number): Promise<Producer> => {
    const id = transactionalIdOf(groupId, topic, partition);
    let found = producers.get(id);
    if (!found) {
      const producer = kafka.producer({
        transactionalId: id,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        transactionTimeout: 30_000,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      // connect() runs InitProducerId, which fences the partition's previous owner.
      found = producer.connect().then(() => producer);
      found.catch(() => producers.delete(id));
      producers.set(id, found);
    }
    return found;
  };

  const closeProducers = async (keep: ReadonlySet<string>) => {
    for (const [id, pending] of producers) {
      if (keep.has(id)) continue;
      producers.delete(id);
      await pending.then((p) => p.disconnect()).catch(() => {});
    }
  };

  /** Handles `chunk` and commits its answers with its offsets in one transaction. */
  const transact = async (producer: Producer, topic: string, partition: number, chunk: KafkaMessage[]) => {
    const tx = await producer.transaction();
    try {
      // Distinct message keys run concurrently, one key's requests in offset order (per-key order).
      const outcomes = new Array<HubOutcome>(chunk.length);
      let failure: { error: unknown } | undefined;
      await applyInKeyOrder(
        chunk.map((message, index) => ({ message, index })),
        ({ message }) => message.key?.toString('latin1') ?? '',
        async ({ message, index }) => {
          try {
            outcomes[index] = await options.handle({
              topic,
              key: message.key,
              value: message.value,
              headers: message.headers,
            });
            return true;
          } catch (error) {
            // Every other request still finishes before the abort, so a retry never overlaps a first attempt.
            failure ??= { error };
            return false;
          }
        },
      );
      if (failure) throw failure.error;
      const out = new Map<string, Message[]>();
      chunk.forEach((message, index) => {
        const outcome = outcomes[index]!;
        const [target, produced] =
          outcome.kind === 'dead-letter'
            ? [options.dlqTopic, deadLetterOf(topic, partition, message, outcome.reason)]
            : [
                outcome.topic,
                {
                  key: outcome.key,
                  value: JSON.stringify(outcome.response),
                  headers: { [hubHeaders.correlationId]: outcome.response.data.correlation_id },
                },
              ];
        out.set(target, [...(out.get(target) ?? []), produced]);
      });
      await tx.sendBatch({ topicMessages: [...out].map(([t, messages]) => ({ topic: t, messages })) });
      const next = (BigInt(chunk.at(-1)!.offset) + 1n).toString();
      await tx.sendOffsets({
        consumerGroupId: groupId,
        topics: [{ topic, partitions: [{ partition, offset: next }] }],
      });
      if (options.fault === 'crash-before-commit') process.kill(process.pid, 'SIGKILL');
      await tx.commit();
      for (const outcome of outcomes) {
        if (outcome.kind === 'dead-letter') {
          logger.warn({ topic, partition, reason: outcome.reason }, 'hub request dead-lettered');
          options.onOutcome?.('dead_lettered');
        } else options.onOutcome?.(outcome.replayed ? 'replayed' : 'answered');
      }
    } catch (error) {
      await tx.abort().catch(() => {});
      throw error;
    }
  };

  const eachBatch = async (p: EachBatchPayload) => {
    const { topic, partition, messages } = p.batch;
    for (let start = 0; start < messages.length; start += chunkSize) {
      const chunk = messages.slice(start, start + chunkSize);
      let delay = retryMinMs;
      for (;;) {
        if (!p.isRunning() || p.isStale()) return;
        try {
          await transact(await producerFor(topic, partition), topic, partition, chunk);
          break;
        } catch (error) {
          const name = (error as { type?: string; name?: string }).type ?? (error as Error).name;
          // Fenced: a newer owner of this partition took over; its transaction answers these requests.
          if (name === 'INVALID_PRODUCER_EPOCH' || name === 'PRODUCER_FENCED') {
            logger.warn({ topic, partition }, 'hub producer fenced by a newer owner; leaving the batch');
            producers.delete(transactionalIdOf(groupId, topic, partition));
            return;
          }
          logger.warn({ err: error, topic, partition, retryInMs: delay }, 'hub transaction failed; retrying');
          // The producer may be stuck in a failed transaction state: open a new one (which also fences the old).
          const id = transactionalIdOf(groupId, topic, partition);
          await producers
            .get(id)
            ?.then((old) => old.disconnect())
            .catch(() => {});
          producers.delete(id);
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, retryMaxMs);
        await p.heartbeat().catch(() => {});
      }
      p.resolveOffset(chunk.at(-1)!.offset);
      await p.heartbeat();
    }
  };

  const launch = async () => {
    const c = kafka.consumer({
      ...groupConsumerConfig(options),
      // A request waits for no fetch longer than this when the partition is idle.
      maxWaitTimeInMs: 100,
      // read_committed (kafkajs's default, stated): requests from transactional producers count once committed.
      readUncommitted: false,
    });
    relauncher.adopt(c);
    let joined = false;
    c.on(c.events.GROUP_JOIN, (e) => {
      joined = true;
      const assignment = e.payload.memberAssignment;
      const keep = new Set<string>();
      for (const [topic, partitions] of Object.entries(assignment)) {
        for (const partition of partitions) {
          keep.add(transactionalIdOf(groupId, topic, partition));
          // Created on assignment, so the previous owner is fenced before the first batch.
          producerFor(topic, partition).catch((error: unknown) =>
            logger.warn({ err: error, topic, partition }, 'hub producer did not connect yet'),
          );
        }
      }
      // Closed on revocation: a partition this member lost is another's to answer.
      void closeProducers(keep);
      logger.info({ groupId, assignment }, 'hub joined its consumer group');
    });
    c.on(c.events.FETCH, () => {
      if (!joined) return;
      relauncher.healthy();
      flowing.open();
    });
    await c.connect();
    if (stopping) return void (await c.disconnect().catch(() => {}));
    for (const topic of options.requestTopics) await c.subscribe({ topic, fromBeginning: options.fromBeginning });
    await c.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 3, eachBatch });
  };

  const relauncher = consumerRelauncher({
    name: 'hub consumer',
    logger,
    launch,
  });

  const createTopics = async () => {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await ensureTopics(admin, [
        ...[...options.requestTopics, ...options.responseTopics].map((topic) => ({ topic, numPartitions: 3 })),
        { topic: options.dlqTopic, numPartitions: 1 },
      ]);
    } catch (error) {
      logger.warn({ err: error }, 'could not create the hub topics; consuming them anyway');
    } finally {
      await admin.disconnect().catch(() => {});
    }
  };

  return {
    groupId,
    async start() {
      stopping = false;
      relauncher.arm();
      void (async () => {
        await createTopics();
        if (!stopping) await launch();
      })().catch((error: unknown) => {
        logger.warn({ err: error }, 'kafka not reachable yet for the hub; will keep trying');
        relauncher.schedule();
      });
    },
    async ready(timeoutMs = 30_000) {
      await flowing.wait('the hub consumer did not start', timeoutMs);
    },
    async stop() {
      stopping = true;
      await relauncher.stop();
      await relauncher
        .release()
        ?.disconnect()
        .catch((error: unknown) => logger.warn({ err: error }, 'hub consumer disconnect'));
      await closeProducers(new Set());
    },
  };
}
