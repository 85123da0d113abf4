import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hubTopicNames } from '../../origin/hub/from-config.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { type HubResponse, hubEventVersion } from '../../shared/hub.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { uniqueName } from '../support/kafka.ts';
import { cleanEnv, spawnEntry } from '../support/spawn-entry.ts';
import { originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * Exactly once by construction: an origin killed right after the store
 * write of a hub request (`STRATA_FAULT=crash-after-store-write`: before the
 * purge log append, the response and the Kafka commit) leaves the change
 * and its idempotency record in Redis together, so its successor, which is
 * redelivered the request, answers it from the recorded versions without
 * writing again. On Redis standalone and on a six-node Redis Cluster, where
 * the keys of one set_many land in different hash slots.
 */
const brokers = inject('kafkaBrokers');
let issuer: TokenIssuer;
let cluster: RunningRedisCluster;

beforeAll(async () => {
  issuer = hs256Issuer();
  cluster = await startRedisCluster({ dir: join(inject('serversDir'), `cluster-${process.pid}-hub-once`) });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await issuer?.close();
});

const backends: [string, () => Record<string, string>][] = [
  ['Redis standalone', () => ({ REDIS_URL: inject('redisUrl') })],
  ['Redis Cluster', () => ({ REDIS_CLUSTER_NODES: cluster.env.REDIS_CLUSTER_NODES! })],
];

describe.each(backends)('a hub request redelivered after a SIGKILL right after the store write (%s)', (_, store) => {
  it('is not applied twice: the entries keep the versions of the first write, and one response answers it', async () => {
    const prefix = `${uniqueName('hubonce')}.`;
    const topics = hubTopicNames(prefix);
    const env = {
      ...store(),
      KAFKA_BROKERS: brokers,
      HUB_ENABLED: 'true',
      HUB_TOPIC_PREFIX: prefix,
      HUB_GROUP_ID: uniqueName('hub-once'),
      KAFKA_FROM_BEGINNING: 'true',
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '500',
      // Both replicas on one purge log, so the successor sees the crashed one's open intent.
      PURGE_LOG_KEY: ownPurgeLogKey(),
      LOG_LEVEL: 'silent',
      ...issuer.env,
    };
    const port = await freePort();
    const crashing = spawnEntry(
      'origin/main.ts',
      cleanEnv({ ...env, ORIGIN_PORT: String(port), STRATA_FAULT: 'crash-after-store-write' }),
    );
    const kafka = new Kafka({ clientId: 'hub-once-test', brokers: [brokers], logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    const reader = kafka.consumer({ groupId: uniqueName('hub-once-reader'), maxWaitTimeInMs: 50 });
    const answers: HubResponse[] = [];
    try {
      await eventually(
        'the crashing origin to listen',
        async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok,
        20_000,
        50,
      );
      await producer.connect();
      await reader.connect();
      const admin = kafka.admin();
      await admin.connect();
      await eventually(
        'the hub topics',
        async () => (await admin.listTopics()).includes(topics.operationResponse),
        20_000,
        200,
      );
      await admin.disconnect();
      await reader.subscribe({ topic: topics.operationResponse, fromBeginning: true });
      await reader.run({
        eachMessage: async ({ message }) => {
          answers.push(JSON.parse(message.value!.toString()) as HubResponse);
        },
      });

      const ns = uniqueName('once').replace(/[^a-z0-9_-]/g, '');
      // Keys chosen to fall in different Cluster hash slots (one record per key, each beside its entry).
      const entries = { 'user:1': 'QQ==', 'order:77': 'Qg==', 'z-9': 'Qw==' };
      const request = {
        event: 'cache.operation.request',
        version: hubEventVersion,
        data: {
          service: 'svc-once',
          correlation_id: randomUUID(),
          timestamp: new Date().toISOString(),
          request_ttl_ms: 120_000,
          operation: 'set_many',
          namespace: ns,
          entries,
          ttl: 600,
          encoding: 'base64',
        },
      };
      await producer.send({
        topic: topics.operationRequest,
        messages: [
          {
            key: ns,
            value: JSON.stringify(request),
            headers: { authorization: `Bearer ${await issuer.sign()}` },
          },
        ],
      });
      expect(await crashing.exited).toBeNull();
      expect(answers).toHaveLength(0);

      const successor = await originFor(env);
      try {
        const token = await issuer.sign();
        const etagOf = async (key: string) =>
          (
            await fetch(`${successor.url}/api/v1/cache/${ns}/${encodeURIComponent(key)}`, {
              headers: { Authorization: `Bearer ${token}` },
            })
          ).headers.get('ETag');
        // Written by the killed origin before any response or commit.
        const before: Record<string, string | null> = {};
        for (const key of Object.keys(entries)) before[key] = await etagOf(key);
        for (const etag of Object.values(before)) expect(etag).not.toBeNull();

        await eventually('the redelivered request answered', () => answers.length >= 1, 40_000, 50);
        const answer = answers[0]!;
        expect(answer.data).toMatchObject({
          status: 'success',
          correlation_id: request.data.correlation_id,
          stored_count: 3,
        });
        for (const key of Object.keys(entries)) {
          // Same version as the killed origin's write: the redelivery wrote nothing.
          expect(await etagOf(key)).toBe(before[key]);
          expect(before[key]).toContain(String(answer.data.versions![key]));
        }
        // A later request on the same partition is answered too; the first still has exactly one response.
        const later = {
          ...request,
          data: { ...request.data, correlation_id: randomUUID(), operation: 'get', key: 'user:1', entries: undefined },
        };
        await producer.send({
          topic: topics.operationRequest,
          messages: [
            { key: ns, value: JSON.stringify(later), headers: { authorization: `Bearer ${await issuer.sign()}` } },
          ],
        });
        await eventually(
          'the later answer',
          () => answers.some((a) => a.data.correlation_id === later.data.correlation_id),
          20_000,
        );
        expect(answers.filter((a) => a.data.correlation_id === request.data.correlation_id)).toHaveLength(1);
      } finally {
        await successor.close();
      }
    } finally {
      await reader.disconnect();
      await producer.disconnect();
      await crashing.stop();
    }
  }, 120_000);
});
