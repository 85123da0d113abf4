import pino from 'pino';
import { inject } from 'vitest';
import { kafkaSource } from '../../origin/invalidation/kafka-source.ts';
import { invalidationSourceConformance } from '../conformance/invalidation-source.ts';
import { connectProducer, createTopics, uniqueName } from '../support/kafka.ts';

const brokers = inject('kafkaBrokers');

for (const [name, fetchSampleMs] of [
  ['kafka (real broker)', undefined],
  ['kafka with the fetch sampler on (real broker)', 5],
] as const)
  invalidationSourceConformance(
    name,
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
        fetchSampleMs,
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
    { applyTimeoutMs: 20_000, readsTwice: fetchSampleMs !== undefined },
  );
