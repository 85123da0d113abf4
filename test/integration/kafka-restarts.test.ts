import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { redisStore } from '../../origin/store/redis.ts';
import type { EntryInput, Store } from '../../origin/store/store.ts';
import { type RunningKafka, startKafka } from '../../scripts/services/kafka.ts';
import {
  connectProducer,
  createTopics,
  invalidation,
  kafkaOriginEnv,
  produceEvents,
  uniqueName,
} from '../support/kafka.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const brokers = inject('kafkaBrokers');
const redisUrl = inject('redisUrl');
const root = resolve(import.meta.dirname, '../..');

let store: Store;

beforeAll(() => {
  store = redisStore({ url: redisUrl });
});
afterAll(async () => {
  await store?.close();
});

/** Writes `count` keys `k0…` into `namespace` and returns their names. */
async function seedKeys(namespace: string, count: number): Promise<string[]> {
  const keys = Array.from({ length: count }, (_, i) => `k${i}`);
  const entry: EntryInput = {
    value: new TextEncoder().encode('v'),
    contentType: 'text/plain',
    ttlMs: 600_000,
    tags: [],
  };
  await store.setMany(namespace, new Map(keys.map((k) => [k, entry])));
  return keys;
}

/** How many of `keys` are still stored. */
async function remaining(namespace: string, keys: string[]): Promise<number> {
  return (await store.getMany(namespace, keys)).size;
}

/** Produces one delete event per key, `perSend` events a send, one send at a time. */
async function produceDeletes(producer: Producer, topic: string, namespace: string, keys: string[], perSend = 10) {
  for (let i = 0; i < keys.length; i += perSend) {
    const events = keys.slice(i, i + perSend).map((k) => invalidation({ namespace, keys: [k] }));
    await produceEvents(producer, topic, events);
  }
}

/** `node origin/main.ts` as a child process, so it can be SIGKILLed. */
function spawnOrigin(env: Record<string, string>): { child: ChildProcess; exited: Promise<void>; log: () => string } {
  let log = '';
  const child = spawn(process.execPath, [join(root, 'origin/main.ts')], {
    cwd: root,
    env: { ...process.env, ORIGIN_PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  return { child, exited, log: () => log.slice(-4_000) };
}

/**
 * A consumer config for the tests whose group may hold a member that is gone (a SIGKILLed origin, a consumer
 * cut off by a broker stop): the group's rebalance waits for that member's session to lapse, so a 3 s session
 * (heartbeat every 300 ms; the test broker allows it) instead of `kafkaOriginEnv`'s 6 s shortens every such
 * wait. Most of these tests' time is process start-up (the broker's JVM, a spawned origin), not this.
 */
const quickRejoin = { KAFKA_SESSION_TIMEOUT_MS: '3000', KAFKA_HEARTBEAT_INTERVAL_MS: '300' };

describe('at-least-once across origin and broker restarts', () => {
  it('SIGKILL of the origin mid-stream: after a restart every event is applied, none skipped', async () => {
    const topic = uniqueName('kill');
    const namespace = uniqueName('kill');
    await createTopics(brokers, topic);
    const keys = await seedKeys(namespace, 600);
    const producer = await connectProducer(brokers);
    const env = { REDIS_URL: redisUrl, ...kafkaOriginEnv(brokers, topic, uniqueName('group')), ...quickRejoin };
    let origin = spawnOrigin(env);
    try {
      const firstHalf = keys.slice(0, 300);
      const producing = produceDeletes(producer, topic, namespace, firstHalf, 5);
      await eventually(
        'the first origin applied part of the stream',
        async () => (await remaining(namespace, keys)) <= keys.length - 30,
        30_000,
        5,
      );
      origin.child.kill('SIGKILL');
      await origin.exited;
      const leftAtKill = await remaining(namespace, keys);
      expect(leftAtKill).toBeGreaterThan(0);
      await producing;
      await produceDeletes(producer, topic, namespace, keys.slice(300), 20);

      origin = spawnOrigin(env);
      await eventually(
        'every key purged after the restart',
        async () => (await remaining(namespace, keys)) === 0,
        60_000,
        100,
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\norigin log:\n${origin.log()}`);
      });
    } finally {
      origin.child.kill('SIGKILL');
      await origin.exited;
      await producer.disconnect();
    }
  });

  it('graceful shutdown commits what was applied and leaves the group: a successor does not re-apply it', async () => {
    const topic = uniqueName('leave');
    const namespace = uniqueName('leave');
    const group = uniqueName('group');
    await createTopics(brokers, topic);
    const keys = await seedKeys(namespace, 50);
    const producer = await connectProducer(brokers);
    try {
      const env = { REDIS_URL: redisUrl, ...kafkaOriginEnv(brokers, topic, group) };
      const first = await originFor(env);
      // Purges relayed, counted by observing the bus (the log's seq also numbers each change's intent).
      let firstRelayed = 0;
      first.bus.observe(() => firstRelayed++);
      await first.invalidations.ready();
      await produceDeletes(producer, topic, namespace, keys);
      await eventually('first origin applied all', () => firstRelayed === keys.length, 15_000);
      await first.close();

      const second = await originFor(env);
      let secondRelayed = 0;
      second.bus.observe(() => secondRelayed++);
      try {
        await second.invalidations.ready();
        await produceEvents(producer, topic, [invalidation({ namespace, keys: ['sentinel'] })]);
        await eventually('successor applied the new event', () => secondRelayed >= 1, 15_000);
        // Only the new event: the first origin's offsets were committed before it left.
        expect(secondRelayed).toBe(1);
      } finally {
        await second.close();
      }
    } finally {
      await producer.disconnect();
    }
  });
});

describe('broker restart', () => {
  let kafka: RunningKafka;

  beforeAll(async () => {
    // This test stops its broker, so it gets its own rather than the shared one.
    kafka = await startKafka({ dir: join(inject('serversDir'), uniqueName('kafka-restart')) });
  });
  afterAll(async () => {
    await kafka?.stop();
  });

  it('an origin started while the broker is down serves at once and consumes once the broker is up', async () => {
    const topic = uniqueName('late');
    const namespace = uniqueName('late');
    await createTopics(kafka.brokers, topic);
    const keys = await seedKeys(namespace, 5);
    await kafka.kill();
    const origin = await originFor({
      REDIS_URL: redisUrl,
      ...kafkaOriginEnv(kafka.brokers, topic, uniqueName('group')),
      ...quickRejoin,
    });
    try {
      expect((await fetch(`${origin.url}/health`)).status).toBe(200);
      await kafka.start();
      await origin.invalidations.ready(60_000);
      const producer = await connectProducer(kafka.brokers);
      try {
        await produceDeletes(producer, topic, namespace, keys);
      } finally {
        await producer.disconnect();
      }
      await eventually('events applied', async () => (await remaining(namespace, keys)) === 0, 30_000, 50);
    } finally {
      await origin.close();
    }
  });

  it('shutting down an origin whose broker is unreachable does not hang', async () => {
    await kafka.kill();
    try {
      const origin = await originFor({ ...kafkaOriginEnv(kafka.brokers, uniqueName('gone'), uniqueName('group')) });
      const started = Date.now();
      await origin.close();
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await kafka.start();
    }
  });

  it('the consumer recovers by itself after the broker stops and starts mid-stream, and no event is lost', async () => {
    const topic = uniqueName('bounce');
    const namespace = uniqueName('bounce');
    await createTopics(kafka.brokers, topic);
    const keys = await seedKeys(namespace, 300);
    const producer = await connectProducer(kafka.brokers);
    const origin = await originFor({
      REDIS_URL: redisUrl,
      ...kafkaOriginEnv(kafka.brokers, topic, uniqueName('group')),
      ...quickRejoin,
    });
    try {
      await origin.invalidations.ready();
      await produceDeletes(producer, topic, namespace, keys.slice(0, 100));
      await eventually(
        'events before the restart applied',
        async () => (await remaining(namespace, keys)) <= 200,
        15_000,
        20,
      );

      const restarting = kafka.restart();
      // Produced while the broker goes down and comes back: the producer retries until it is up.
      await produceDeletes(producer, topic, namespace, keys.slice(100, 200));
      await restarting;
      await produceDeletes(producer, topic, namespace, keys.slice(200));

      await eventually(
        'every key purged after the broker restart',
        async () => (await remaining(namespace, keys)) === 0,
        90_000,
        100,
      );
    } finally {
      await origin.close();
      await producer.disconnect();
    }
  });
});
