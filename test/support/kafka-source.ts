/** The Kafka invalidation source as the Kafka integration tests build it. */
import pino from 'pino';
import { type KafkaSource, type KafkaSourceOptions, kafkaSource } from '../../origin/invalidation/kafka-source.ts';

/**
 * A Kafka source of group `groupId` on `brokers` (one `host:port`): from the
 * oldest record without a committed offset, a 6 000 ms session timeout (the
 * broker minimum) and 500 ms heartbeats, so rebalances are quick, and a
 * silent logger. `options` add callbacks or override any of these.
 */
export function testKafkaSource(
  brokers: string,
  clientId: string,
  options: Pick<KafkaSourceOptions, 'topic' | 'groupId' | 'applier'> & Partial<KafkaSourceOptions>,
): KafkaSource {
  return kafkaSource({
    connection: { brokers: [brokers], clientId },
    fromBeginning: true,
    sessionTimeoutMs: 6_000,
    heartbeatIntervalMs: 500,
    logger: pino({ level: 'silent' }),
    ...options,
  });
}
