/**
 * Starts the real servers integration tests need, once per run, on free
 * loopback ports, and stops them afterwards (ARCHITECTURE.md §5). Servers
 * that are slow to start are started only when a selected test file needs
 * them (see `servers.ts`), via `inject`ed env.
 *
 * A missing prerequisite fails the run with the install command; nothing is
 * skipped silently.
 */
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
    serversDir: string;
  }
}

let redis: RunningRedis | undefined;
let kafka: RunningKafka | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'strata-test-'));
  const kafkaDir = join(dir, 'kafka');
  // Kafka is the slow one (a JVM, ~4 s once its jars are cached): start both at once.
  [redis, kafka] = await Promise.all([startRedis({ dir: join(dir, 'redis') }), startKafka({ dir: kafkaDir })]);
  project.provide('redisUrl', redis.url);
  project.provide('kafkaBrokers', kafka.brokers);
  project.provide('serversDir', dir);
}

export async function teardown(): Promise<void> {
  await Promise.all([redis?.stop(), kafka?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
}
