/**
 * Kafka helpers for the invalidation tests: topics created explicitly with
 * the admin client (3 partitions), a producer, valid events, origin env with
 * fast rebalances, and a reader for the dead-letter topic.
 */
import { randomUUID } from 'node:crypto';
import { type IHeaders, Kafka, type KafkaMessage, logLevel, type Producer } from 'kafkajs';
import { CacheService } from '../../origin/cache-service.ts';
import { ensureTopics } from '../../origin/invalidation/kafka-topics.ts';
import type { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import type { InvalidationEvent } from '../../shared/schemas.ts';
import { eventually } from './wait.ts';

/** A short unique name for a topic or group, so test files never share state. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

function client(brokers: string): Kafka {
  return new Kafka({ clientId: 'strata-test', brokers: [brokers], logLevel: logLevel.NOTHING });
}

/** Creates `topic` (and `<topic>.dlq`) with `partitions` partitions and waits for their leaders. */
export async function createTopics(brokers: string, topic: string, partitions = 3): Promise<void> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, [
      { topic, numPartitions: partitions },
      { topic: `${topic}.dlq`, numPartitions: 1 },
    ]);
  } finally {
    await admin.disconnect();
  }
}

/** A connected producer with generous retries (it must ride out a broker restart). */
export async function connectProducer(brokers: string): Promise<Producer> {
  const producer = new Kafka({
    clientId: 'strata-test-producer',
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 200, maxRetryTime: 2_000, retries: 30 },
  }).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  return producer;
}

/** A valid invalidation event (ARCHITECTURE.md §4) with a fresh id. */
export function invalidation(fields: Partial<InvalidationEvent> & { namespace: string }): InvalidationEvent {
  return {
    id: randomUUID(),
    keys: [],
    tags: [],
    prefix: null,
    action: 'delete',
    timestamp: Date.now(),
    ...fields,
  };
}

/** The message key of an event: `namespace:key` for a single key, else `namespace` (per-key order). */
export function messageKey(event: InvalidationEvent): string {
  return event.keys.length === 1 ? `${event.namespace}:${event.keys[0]}` : event.namespace;
}

/** Produces events as JSON, keyed by {@link messageKey}. */
export async function produceEvents(producer: Producer, topic: string, events: InvalidationEvent[]): Promise<void> {
  await producer.send({
    topic,
    messages: events.map((e) => ({ key: messageKey(e), value: JSON.stringify(e) })),
  });
}

/** Origin env consuming `topic` in group `groupId`, with fast group rebalances for tests. */
export function kafkaOriginEnv(brokers: string, topic: string, groupId: string): Record<string, string> {
  return {
    KAFKA_BROKERS: brokers,
    KAFKA_INVALIDATION_TOPIC: topic,
    KAFKA_GROUP_ID: groupId,
    KAFKA_FROM_BEGINNING: 'true',
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    KAFKA_HEARTBEAT_INTERVAL_MS: '500',
  };
}

/** A message read back from a topic, with headers decoded as UTF-8. */
export interface ReadMessage {
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Record<string, string>;
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k] = Array.isArray(v) ? String(v[0]) : String(v ?? '');
  return out;
}

/** Reads `topic` from the beginning until `count` messages arrived (or times out). */
export async function readTopic(
  brokers: string,
  topic: string,
  count: number,
  timeoutMs = 20_000,
): Promise<ReadMessage[]> {
  const consumer = client(brokers).consumer({
    groupId: uniqueName('reader'),
    sessionTimeout: 6_000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
  });
  const seen: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void seen.push(message) });
    await eventually(`${count} messages on ${topic}`, () => seen.length >= count, timeoutMs, 50);
  } finally {
    await consumer.disconnect();
  }
  return seen.map((m) => ({
    key: m.key?.toString('utf8') ?? null,
    value: m.value?.toString('utf8') ?? null,
    headers: decodeHeaders(m.headers),
  }));
}

/**
 * A cache service over a 1 MiB memory store publishing to `bus`, and the
 * first key of every purge the bus published, in order: what an
 * invalidation source applied.
 */
export function purgeRecorder(bus: InProcessPurgeBus): { service: CacheService; applied: string[] } {
  const service = new CacheService({
    store: passThroughStore(memoryStore({ maxBytes: 1 << 20 })),
    bus,
    defaultTtlSeconds: 60,
    maxValueBytes: 1024,
  });
  const applied: string[] = [];
  bus.observe((m) => applied.push(m.keys[0]!));
  return { service, applied };
}
