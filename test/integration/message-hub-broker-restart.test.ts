import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hubTopicNames } from '../../origin/hub/from-config.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { type RunningKafka, startKafka } from '../../scripts/services/kafka.ts';
import { type HubResponse, hubEventVersion } from '../../shared/hub.ts';
import { uniqueName } from '../support/kafka.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The hub across a broker restart, on a broker of its own: transactions in
 * flight abort, their requests come again, and every request still gets
 * exactly one committed response, each change applied once.
 */
const redisUrl = inject('redisUrl');
let kafka: RunningKafka;

beforeAll(async () => {
  kafka = await startKafka({ dir: join(inject('serversDir'), uniqueName('kafka-hub-restart')) });
}, 60_000);
afterAll(async () => {
  await kafka?.stop();
});

describe('hub across a broker restart', () => {
  it('every request sent before, during and after the restart gets exactly one response and is applied once', async () => {
    const prefix = `${uniqueName('hubrestart')}.`;
    const topics = hubTopicNames(prefix);
    const ns = uniqueName('bounce').replace(/[^a-z0-9_-]/g, '');
    const origin: RunningOrigin = await originFor({
      REDIS_URL: redisUrl,
      KAFKA_BROKERS: kafka.brokers,
      HUB_ENABLED: 'true',
      HUB_TOPIC_PREFIX: prefix,
      HUB_GROUP_ID: uniqueName('hub-restart'),
      KAFKA_FROM_BEGINNING: 'true',
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '500',
    });
    const client = new Kafka({
      clientId: 'hub-restart-test',
      brokers: [kafka.brokers],
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 200, maxRetryTime: 2_000, retries: 30 },
    });
    // Idempotent, as the typed client's: a retried send during the restart must not write a request twice.
    const producer = client.producer({ idempotent: true, allowAutoTopicCreation: false });
    await producer.connect();
    const seen: HubResponse[] = [];
    /** Correlation ids as written on the request topic (a duplicate here would be the producer's, not the hub's). */
    const requested: string[] = [];
    let reader: Consumer | undefined;
    try {
      await origin.hub!.ready(60_000);
      reader = client.consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 50 });
      await reader.connect();
      await reader.subscribe({ topic: topics.operationResponse, fromBeginning: true });
      await reader.subscribe({ topic: topics.operationRequest, fromBeginning: true });
      await reader.run({
        eachMessage: async ({ topic, message }) => {
          const parsed = JSON.parse(message.value!.toString());
          if (topic === topics.operationRequest) requested.push(parsed.data.correlation_id);
          else seen.push(parsed);
        },
      });

      const ids: { id: string; key: string }[] = [];
      const send = async (from: number, to: number) => {
        for (let i = from; i < to; i += 5) {
          const batch = Array.from({ length: 5 }, (_, j) => {
            const key = `k${i + j}`;
            const id = randomUUID();
            ids.push({ id, key });
            const request = {
              event: 'cache.operation.request',
              version: hubEventVersion,
              data: {
                operation: 'set',
                service: 'svc',
                namespace: ns,
                key,
                value: 'dg==',
                ttl: 600,
                correlation_id: id,
                timestamp: new Date().toISOString(),
                request_ttl_ms: 120_000,
              },
            };
            return { key: `${ns}:${key}`, value: JSON.stringify(request) };
          });
          await producer.send({ topic: topics.operationRequest, messages: batch });
        }
      };
      await send(0, 30);
      const restarting = kafka.restart();
      await send(30, 60);
      await restarting;
      await send(60, 90);

      const answered = () => new Set(seen.map((r) => r.data.correlation_id));
      await eventually('every request answered', () => ids.every(({ id }) => answered().has(id)), 90_000, 100);
      // Later requests on other keys of the same three partitions are answered after any late duplicate would be.
      const first = ids.length;
      await send(90, 180);
      await eventually(
        'the later requests answered',
        () => ids.slice(first).every(({ id }) => answered().has(id)),
        60_000,
        100,
      );
      for (const { id, key } of ids.slice(0, first)) {
        expect(requested.filter((r) => r === id)).toHaveLength(1);
        const responses = seen.filter((r) => r.data.correlation_id === id);
        expect(responses).toHaveLength(1);
        expect(responses[0]!.data.status).toBe('success');
        // Applied once: the entry still carries the version of the one application its response reported.
        const res = await fetch(`${origin.url}/api/v1/cache/${ns}/${key}`);
        expect(res.headers.get('ETag')).toContain(String(responses[0]!.data.version));
      }
    } finally {
      await reader?.disconnect();
      await producer.disconnect();
      await origin.close();
    }
  }, 240_000);
});
