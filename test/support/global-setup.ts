/**
 * Starts the real servers integration tests need, once per run, on free
 * loopback ports, and stops them afterwards (ARCHITECTURE.md §5). Servers
 * that are slow to start are started only when a selected test file needs
 * them (see `servers.ts`), via `inject`ed env.
 *
 * A missing prerequisite fails the run with the install command; nothing is
 * skipped silently.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type RunningKafka, startKafka } from '../../scripts/services/kafka.ts';
import { type RunningRedis, startRedis } from '../../scripts/services/redis.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** Shared single-node Kafka (`host:port`). Tests that restart a broker start their own. */
    kafkaBrokers: string;
    /** The same broker's SASL_PLAINTEXT listener (`host:port`): SCRAM-SHA-256/512 and PLAIN for {@link kafkaSaslUser}. */
    kafkaSaslBrokers: string;
    /** The one user of the SASL listener. */
    kafkaSaslUser: { username: string; password: string };
    serversDir: string;
  }
}

let redis: RunningRedis | undefined;
let kafka: RunningKafka | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'strata-test-'));
  const kafkaDir = join(dir, 'kafka');
  const saslUser = { username: 'strata-test', password: randomBytes(12).toString('hex') };
  // Kafka is the slow one (a JVM, ~4 s once its jars are cached): start both at once.
  [redis, kafka] = await Promise.all([
    startRedis({ dir: join(dir, 'redis') }),
    startKafka({
      dir: kafkaDir,
      // A separate listener for the Kafka security tests; every other test keeps the PLAINTEXT one.
      extraListeners: [{ name: 'SASL', protocol: 'SASL_PLAINTEXT', user: saslUser }],
    }),
  ]);
  project.provide('redisUrl', redis.url);
  project.provide('kafkaBrokers', kafka.brokers);
  project.provide('kafkaSaslBrokers', `127.0.0.1:${kafka.listenerPorts.SASL}`);
  project.provide('kafkaSaslUser', saslUser);
  project.provide('serversDir', dir);
}

export async function teardown(): Promise<void> {
  await Promise.all([redis?.stop(), kafka?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
}
