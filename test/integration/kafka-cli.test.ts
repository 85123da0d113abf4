import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { redisStore } from '../../origin/store/redis.ts';
import type { Store } from '../../origin/store/store.ts';
import { createTopics, kafkaOriginEnv, uniqueName } from '../support/kafka.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const brokers = inject('kafkaBrokers');
const redisUrl = inject('redisUrl');

let store: Store;
beforeAll(() => {
  store = redisStore({ url: redisUrl });
});
afterAll(async () => {
  await store?.close();
});

/** Runs `npm run invalidate` (the script itself) with `args` and env over a clean one. */
async function invalidate(args: string[], env: Record<string, string>) {
  const { KAFKA_BROKERS: _b, ORIGIN_URL: _o, ...base } = process.env;
  return await run(process.execPath, [join(root, 'scripts/invalidate.ts'), ...args], {
    cwd: root,
    env: { ...base, ...env },
  });
}

async function seed(namespace: string, keys: string[], tags: string[] = []) {
  for (const key of keys) {
    await store.set(namespace, key, { value: new Uint8Array([1]), contentType: 'text/plain', ttlMs: 600_000, tags });
  }
}

describe('npm run invalidate', () => {
  it('publishes a valid event to Kafka that the origin applies', async () => {
    const topic = uniqueName('cli');
    const ns = uniqueName('cli');
    await createTopics(brokers, topic);
    await seed(ns, ['a', 'b', 'c']);
    const origin = await originFor({ REDIS_URL: redisUrl, ...kafkaOriginEnv(brokers, topic, uniqueName('group')) });
    try {
      await origin.invalidations.ready();
      const { stdout } = await invalidate(['--namespace', ns, '--keys', 'a,b'], {
        KAFKA_BROKERS: brokers,
        KAFKA_INVALIDATION_TOPIC: topic,
      });
      expect(stdout).toMatch(new RegExp(`published .* to ${topic} partition \\d+`));
      await eventually('a and b purged', async () => (await store.getMany(ns, ['a', 'b'])).size === 0, 10_000);
      expect(await store.get(ns, 'c')).not.toBeNull();
    } finally {
      await origin.close();
    }
  });

  it('without brokers, hands the event to the origin’s in-process source (same path as Kafka)', async () => {
    const ns = uniqueName('local');
    await seed(ns, ['x', 'y'], ['grp']);
    await seed(ns, ['z']);
    const origin = await originFor({ REDIS_URL: redisUrl });
    try {
      expect(origin.invalidations.kind).toBe('in-process');
      // Purges relayed, counted by observing the bus (the log's seq also numbers each change's intent).
      let relayed = 0;
      origin.bus.observe(() => relayed++);
      const { stdout } = await invalidate(['--namespace', ns, '--tags', 'grp', '--id', 'op-1'], {
        ORIGIN_URL: origin.url,
      });
      expect(stdout).toMatch(/"result":"applied"/);
      expect((await store.getMany(ns, ['x', 'y', 'z'])).size).toBe(1);
      expect(relayed).toBe(1);
      // Same id again: idempotent, nothing re-published.
      const again = await invalidate(['--namespace', ns, '--tags', 'grp', '--id', 'op-1'], { ORIGIN_URL: origin.url });
      expect(again.stdout).toMatch(/"result":"duplicate"/);
      expect(relayed).toBe(1);
    } finally {
      await origin.close();
    }
  });

  it('--soft marks the entries stale instead of removing them (an entry without grace goes)', async () => {
    const ns = uniqueName('soft');
    const grace = { staleWhileRevalidateMs: 600_000, staleIfErrorMs: 0 };
    await store.set(ns, 'graced', {
      value: new Uint8Array([1]),
      contentType: 'text/plain',
      ttlMs: 600_000,
      tags: [],
      grace,
    });
    await seed(ns, ['bare']);
    const origin = await originFor({ REDIS_URL: redisUrl });
    try {
      const { stdout } = await invalidate(['--namespace', ns, '--keys', 'graced,bare', '--soft'], {
        ORIGIN_URL: origin.url,
      });
      expect(stdout).toMatch(/"result":"applied"/);
      expect((await store.get(ns, 'graced'))?.softPurgedAtMs).toBeGreaterThan(0);
      expect(await store.get(ns, 'bare')).toBeNull();
      const res = await fetch(`${origin.url}/api/v1/cache/${ns}/graced`);
      expect([res.headers.get('X-Cache'), res.headers.get('X-Cache-Stale-Reason')]).toEqual(['STALE', 'soft-purge']);
    } finally {
      await origin.close();
    }
  });

  it('refuses an event without keys, tags or prefix (exit 2) and sends nothing', async () => {
    await expect(invalidate(['--namespace', 'ns'], {})).rejects.toMatchObject({ code: 2 });
  });
});
