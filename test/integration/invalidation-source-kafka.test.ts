import pino from 'pino';
import { inject } from 'vitest';
import { kafkaSource } from '../../origin/invalidation/kafka-source.ts';
import { invalidationSourceConformance } from '../conformance/invalidation-source.ts';
import { connectProducer, createTopics, uniqueName } from '../support/kafka.ts';

const brokers = inject('kafkaBrokers');

invalidationSourceConformance(
  'kafka (real broker)',
  async (applier) => {
    const topic = uniqueName('conformance');
    await createTopics(brokers, topic);
    const producer = await connectProducer(brokers);
    const source = kafkaSource({
      connection: { brokers: [brokers], clientId: 'strata-conformance' },
      topic,
      groupId: uniqueName('conformance-group'),
      fromBeginning: true,
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      applier,
      logger: pino({ level: 'silent' }),
    });
    return {
      source,
      async deliver(deliveries) {
        await producer.send({
          topic,
          messages: deliveries.map((d) => ({ key: d.orderingKey, value: JSON.stringify(d.event) })),
        });
      },
      async close() {
        await source.stop();
        await producer.disconnect();
      },
    };
  },
  { applyTimeoutMs: 20_000 },
);
