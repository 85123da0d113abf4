/**
 * Kafka security against the real test broker's SASL_PLAINTEXT listener
 * (SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN for one user); the PLAINTEXT
 * listener the other tests use is left as it is.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { kafkaClient, kafkaConnectionFromConfig } from '../../origin/kafka/client.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { redisStore } from '../../origin/store/redis.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { invalidation, kafkaOriginEnv, messageKey, uniqueName } from '../support/kafka.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const saslBrokers = inject('kafkaSaslBrokers');
const user = inject('kafkaSaslUser');
const redisUrl = inject('redisUrl');

function saslEnv(mechanism: string, password = user.password): Record<string, string> {
  return {
    KAFKA_BROKERS: saslBrokers,
    KAFKA_SASL_MECHANISM: mechanism,
    KAFKA_SASL_USERNAME: user.username,
    KAFKA_SASL_PASSWORD: password,
  };
}

/** An admin client built by the origin's one factory from `env`. */
function admin(env: Record<string, string>) {
  const connection = kafkaConnectionFromConfig(parseConfig(originConfigSchema, env))!;
  return kafkaClient(connection, { connectionTimeoutMs: 3_000, retry: { retries: 0 } }).admin();
}

let origin: RunningOrigin | undefined;
afterAll(async () => {
  await origin?.close();
});

describe('Kafka SASL through the one client factory', () => {
  it.each(['scram-sha-256', 'scram-sha-512', 'plain'])('%s authenticates and lists topics', async (mechanism) => {
    const client = admin(saslEnv(mechanism));
    await client.connect();
    try {
      expect(Array.isArray(await client.listTopics())).toBe(true);
    } finally {
      await client.disconnect();
    }
  });

  it('a wrong password is refused with an authentication error', async () => {
    const client = admin(saslEnv('scram-sha-256', 'not-the-password'));
    await expect(client.connect()).rejects.toThrow(/SASL SCRAM SHA256 authentication failed|Authentication failed/i);
  });

  it('a client without SASL cannot use the SASL listener', async () => {
    const client = admin({ KAFKA_BROKERS: saslBrokers });
    try {
      await expect(client.connect().then(() => client.listTopics())).rejects.toThrow();
    } finally {
      await client.disconnect();
    }
  });

  it('an origin configured with SCRAM consumes invalidations (and creates its topics) over that listener', async () => {
    const topic = uniqueName('inv-sasl');
    const namespace = uniqueName('sasl');
    const store = redisStore({ url: redisUrl });
    try {
      await store.set(namespace, 'k', {
        value: new TextEncoder().encode('v'),
        contentType: 'text/plain',
        ttlMs: 60_000,
        tags: [],
      });
      origin = await originFor({
        REDIS_URL: redisUrl,
        ...kafkaOriginEnv(saslBrokers, topic, uniqueName('group')),
        ...saslEnv('scram-sha-512'),
      });
      await origin.invalidations.ready();
      const connection = kafkaConnectionFromConfig(parseConfig(originConfigSchema, saslEnv('scram-sha-512')))!;
      const producer = kafkaClient(connection).producer();
      await producer.connect();
      try {
        const event = invalidation({ namespace, keys: ['k'] });
        await producer.send({ topic, messages: [{ key: messageKey(event), value: JSON.stringify(event) }] });
      } finally {
        await producer.disconnect();
      }
      await eventually(
        'the SASL origin applied the event',
        async () => (await store.get(namespace, 'k')) === null,
        15_000,
      );
    } finally {
      await store.close();
    }
  });
});
