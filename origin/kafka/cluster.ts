import { createRequire } from 'node:module';
import type { KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { type KafkaConnection, kafkaSecurity } from './client.ts';
import { kafkaLogLevel, pinoLogCreator } from './log.ts';

/*
 * kafkajs's own cluster, broker and batch, used directly and typed locally
 * (kafkajs 2.2.4 is pinned, and patched in patches/): its public consumer
 * has one fetch in flight per broker, while each cluster built here brings
 * its own broker connections, so several fetches can be in flight at once.
 */

/** The part of a kafkajs `Broker` used here (`kafkajs/src/broker`). */
export interface KafkaBroker {
  fetch(request: {
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    isolationLevel: number;
    topics: { topic: string; partitions: { partition: number; fetchOffset: string; maxBytes: number }[] }[];
  }): Promise<{ responses: { topicName: string; partitions: FetchedPartition[] }[] }>;
  offsetFetch(request: {
    groupId: string;
    topics: { topic: string; partitions: { partition: number }[] }[];
  }): Promise<{ responses: { topic: string; partitions: { partition: number; offset: string }[] }[] }>;
}
/** One partition of a fetch answer, as kafkajs decodes it (its records stay opaque here). */
export interface FetchedPartition {
  partition: number;
  highWatermark: string;
}
/** The part of a kafkajs `Cluster` used here (`kafkajs/src/cluster`). */
export interface KafkaCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(by: { nodeId: string }): Promise<KafkaBroker>;
  findGroupCoordinator(by: { groupId: string }): Promise<KafkaBroker>;
}
type ClusterConstructor = new (options: Record<string, unknown>) => KafkaCluster;
type BatchConstructor = new (
  topic: string,
  fetchedOffset: string,
  partition: FetchedPartition,
) => { readonly messages: KafkaMessage[] };

const require = createRequire(import.meta.url);
const Cluster = require('kafkajs/src/cluster') as ClusterConstructor;
// Drops records below the fetched offset, aborted transactions and control records, as the consumer does.
const Batch = require('kafkajs/src/consumer/batch') as BatchConstructor;
const { createLogger } = require('kafkajs/src/loggers') as {
  createLogger(options: { level: number; logCreator: unknown }): unknown;
};
const socketFactory = require('kafkajs/src/network/socketFactory') as () => unknown;

/**
 * A kafkajs cluster (brokers, metadata, one fetch connection and one other
 * connection per broker) with the connection's brokers, client id, TLS and
 * SASL ({@link kafkaSecurity}), logging through `logger`. Not connected.
 */
export function kafkaCluster(connection: KafkaConnection, logger: Logger): KafkaCluster {
  return new Cluster({
    logger: createLogger({ level: kafkaLogLevel(logger), logCreator: pinoLogCreator(logger) }),
    socketFactory: socketFactory(),
    brokers: [...connection.brokers],
    clientId: connection.clientId,
    ...kafkaSecurity(connection),
    connectionTimeout: 3_000,
    enforceRequestTimeout: true,
    requestTimeout: 10_000,
    metadataMaxAge: 300_000,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: 2 },
  });
}

/**
 * The records of one fetched partition at or after `fetchedOffset`, without
 * aborted transactions or control records, as the kafkajs consumer hands
 * them over (its `Batch`).
 */
export function batchMessages(topic: string, fetchedOffset: string, fetched: FetchedPartition): KafkaMessage[] {
  return new Batch(topic, fetchedOffset, fetched).messages;
}
