import { inject } from 'vitest';
import { invalidationSourceConformance } from '../conformance/invalidation-source.ts';
import { connectProducer, createTopics, uniqueName } from '../support/kafka.ts';
import { testKafkaSource } from '../support/kafka-source.ts';

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
      const source = testKafkaSource(brokers, 'strata-conformance', {
        topic,
        groupId: uniqueName('conformance-group'),
        applier,
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
