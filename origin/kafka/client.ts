import { Kafka, type KafkaConfig, logLevel, type RetryOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { OriginConfig } from '../../shared/config.ts';
import { kafkaLogLevel, pinoLogCreator } from './log.ts';

/**
 * How to reach the Kafka cluster: everything every client of the origin
 * shares. Transport security (`ssl`, `sasl`) is added here when needed, and
 * every client gets it at once.
 */
export interface KafkaConnection {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  /** Client id the broker logs and quotas see (`KAFKA_CLIENT_ID`). */
  readonly clientId: string;
}

/** How one client behaves on top of the shared connection. */
export interface KafkaClientOptions {
  /** Where kafkajs logs go (through pino, at pino's level); none when absent. */
  readonly logger?: Logger;
  /** Milliseconds to wait for a broker connection; kafkajs's default when absent. */
  readonly connectionTimeoutMs?: number;
  /** kafkajs retry policy; kafkajs's default when absent. */
  readonly retry?: RetryOptions;
}

/** The connection the origin's config names; undefined when `KAFKA_BROKERS` is unset. */
export function kafkaConnectionFromConfig(config: OriginConfig): KafkaConnection | undefined {
  if (!config.KAFKA_BROKERS) return undefined;
  return { brokers: config.KAFKA_BROKERS, clientId: config.KAFKA_CLIENT_ID };
}

/**
 * The one place the origin builds a kafkajs client (the invalidation
 * consumer, its dead-letter producer, the health-event producer), so a
 * connection setting reaches every client.
 */
export function kafkaClient(connection: KafkaConnection, options: KafkaClientOptions = {}): Kafka {
  const config: KafkaConfig = {
    clientId: connection.clientId,
    brokers: [...connection.brokers],
    ...(options.logger
      ? { logLevel: kafkaLogLevel(options.logger), logCreator: pinoLogCreator(options.logger) }
      : { logLevel: logLevel.NOTHING }),
    ...(options.connectionTimeoutMs !== undefined ? { connectionTimeout: options.connectionTimeoutMs } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
  };
  return new Kafka(config);
}
