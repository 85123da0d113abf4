import { readFileSync } from 'node:fs';
import { Kafka, type KafkaConfig, logLevel, type RetryOptions, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { OriginConfig } from '../../shared/config.ts';
import { kafkaLogLevel, pinoLogCreator } from './log.ts';

/** SASL mechanisms the origin speaks: PLAIN (RFC 4616) and SCRAM (RFC 5802, RFC 7677). */
export type KafkaSaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/**
 * How to reach the Kafka cluster: everything every client of the origin
 * shares, transport security included, so every client gets it at once.
 */
export interface KafkaConnection {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  /** Client id the broker logs and quotas see (`KAFKA_CLIENT_ID`). */
  readonly clientId: string;
  /**
   * TLS to the brokers (`KAFKA_SSL`): absent = plaintext; `ca` = PEM text of
   * the CAs to trust instead of the system store (`KAFKA_SSL_CA_FILE`).
   */
  readonly ssl?: { readonly ca?: string } | undefined;
  /** SASL authentication (`KAFKA_SASL_*`); absent = none. */
  readonly sasl?:
    | { readonly mechanism: KafkaSaslMechanism; readonly username: string; readonly password: string }
    | undefined;
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

/**
 * The connection the origin's config names; undefined when `KAFKA_BROKERS` is unset.
 * @throws Error with a one-line message when `KAFKA_SSL_CA_FILE` cannot be read.
 */
export function kafkaConnectionFromConfig(
  config: Pick<
    OriginConfig,
    | 'KAFKA_BROKERS'
    | 'KAFKA_CLIENT_ID'
    | 'KAFKA_SSL'
    | 'KAFKA_SSL_CA_FILE'
    | 'KAFKA_SASL_MECHANISM'
    | 'KAFKA_SASL_USERNAME'
    | 'KAFKA_SASL_PASSWORD'
  >,
): KafkaConnection | undefined {
  if (!config.KAFKA_BROKERS) return undefined;
  let ssl: KafkaConnection['ssl'];
  if (config.KAFKA_SSL) {
    const file = config.KAFKA_SSL_CA_FILE;
    if (file === undefined) ssl = {};
    else {
      try {
        ssl = { ca: readFileSync(file, 'utf8') };
      } catch (error) {
        throw new Error(`KAFKA_SSL_CA_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? error})`);
      }
    }
  }
  const { KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: username, KAFKA_SASL_PASSWORD: password } = config;
  const sasl = mechanism && username && password ? { mechanism, username, password } : undefined;
  return { brokers: config.KAFKA_BROKERS, clientId: config.KAFKA_CLIENT_ID, ssl, sasl };
}

/** The kafkajs `ssl` and `sasl` settings of a connection (nothing for plaintext without SASL). */
export function kafkaSecurity(connection: KafkaConnection): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (connection.ssl) out.ssl = connection.ssl.ca ? { ca: [connection.ssl.ca] } : true;
  if (connection.sasl) out.sasl = { ...connection.sasl } as SASLOptions;
  return out;
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
    ...kafkaSecurity(connection),
    ...(options.logger
      ? { logLevel: kafkaLogLevel(options.logger), logCreator: pinoLogCreator(options.logger) }
      : { logLevel: logLevel.NOTHING }),
    ...(options.connectionTimeoutMs !== undefined ? { connectionTimeout: options.connectionTimeoutMs } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
  };
  return new Kafka(config);
}
