/**
 * Cross-region invalidation on real servers: region A = two origin processes
 * on the shared test Redis (one purge log), region B = an origin on a Redis
 * of its own with an edge, one shared Kafka topic, one consumer group per
 * region. Values never cross; purges do, through each region's forwarder.
 */
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { type RunningRedis, startRedis } from '../../scripts/services/redis.ts';
import { connectProducer, createTopics, readTopic, uniqueName } from '../support/kafka.ts';
import { scrape, value } from '../support/prometheus.ts';
import {
  distinctIds,
  firstOccurrencesPerKey,
  increasing,
  topicEvents as readTopicEvents,
} from '../support/region-topic.ts';
import { cleanEnv, type Spawned, spawnEntry } from '../support/spawn-entry.ts';
import { edgeFor, originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const brokers = inject('kafkaBrokers');
const redisUrl = inject('redisUrl');
const text = new TextEncoder();

let topic: string;
let redisB: RunningRedis;
let producer: Producer;
let b: RunningOrigin;
let edgeB: RunningEdge;
const replicasA: { url: string; proc: Spawned }[] = [];
const cleanups: (() => Promise<void>)[] = [];

function regionEnv(region: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    STRATA_REGION: region,
    KAFKA_BROKERS: brokers,
    KAFKA_INVALIDATION_TOPIC: topic,
    KAFKA_FROM_BEGINNING: 'true',
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    KAFKA_HEARTBEAT_INTERVAL_MS: '500',
    REGION_FORWARD_LEASE_MS: '1500',
    LOG_LEVEL: 'silent',
    ...extra,
  };
}

async function replicaA(env: Record<string, string>): Promise<{ url: string; proc: Spawned }> {
  const port = await freePort();
  const proc = spawnEntry('origin/main.ts', cleanEnv({ ...env, ORIGIN_PORT: String(port) }));
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    'a region A replica to listen',
    async () => (await fetch(`${url}/health`).catch(() => null))?.ok,
    30_000,
    100,
  );
  return { url, proc };
}

const put = async (base: string, ns: string, key: string, body: string) => {
  const res = await fetch(`${base}/api/v1/cache/${ns}/${encodeURIComponent(key)}?ttl=600`, { method: 'PUT', body });
  expect(res.status).toBe(200);
};
const edgeGet = async (ns: string, key: string) => {
  const res = await fetch(`${edgeB.url}/api/v1/cache/${ns}/${encodeURIComponent(key)}`);
  return { status: res.status, cache: res.headers.get('X-Cache'), body: await res.text() };
};
const inEdgeTier = (ns: string, key: string) => edgeB.cache.tier.get(ns, key) !== undefined;
/** Writes into B's store directly (no purge log entry): a value B holds, with nothing to forward. */
const seedB = (ns: string, key: string, value: string) =>
  b.store.set(ns, key, { value: text.encode(value), contentType: 'text/plain', ttlMs: 600_000, tags: [] });

/** Whether the origin at `url` holds its region's forwarding lease now (`/ready`). */
const forwards = async (url: string): Promise<boolean> =>
  ((await (await fetch(`${url}/ready`)).json()) as { region?: { forwarder?: boolean } }).region?.forwarder === true;

/** One sample of an origin's `/metrics` (0 when absent). */
const metric = async (url: string, name: string, labels: Record<string, string> = {}) =>
  value(await scrape(url), name, labels);

/** Events on this file's topic (see {@link readTopicEvents}). */
const topicEvents = (
  match: Parameters<typeof readTopicEvents>[2],
  done: Parameters<typeof readTopicEvents>[3],
  timeoutMs?: number,
) => readTopicEvents(brokers, topic, match, done, timeoutMs);

beforeAll(async () => {
  topic = uniqueName('inv-regions');
  await createTopics(brokers, topic);
  producer = await connectProducer(brokers);
  redisB = await startRedis({ dir: join(inject('serversDir'), uniqueName('redis-region-b')) });
  const logA = ownPurgeLogKey();
  const envA = { REDIS_URL: redisUrl, PURGE_LOG_KEY: logA, ...regionEnv('a', { KAFKA_GROUP_ID: uniqueName('a') }) };
  replicasA.push(...(await Promise.all([replicaA(envA), replicaA(envA)])));
  b = await originFor({
    REDIS_URL: redisB.url,
    ...regionEnv('b', { KAFKA_GROUP_ID: uniqueName('b'), PURGE_CANARY_SECONDS: '1' }),
  });
  await b.invalidations.ready();
  edgeB = await edgeFor(b.url, { EDGE_MAX_TTL_SECONDS: '600' });
  // Both A replicas consume too (their own group): wait until one forwards.
  await eventually(
    'a region A forwarder',
    async () => {
      const ready = await Promise.all(replicasA.map(async (r) => (await fetch(`${r.url}/ready`)).json()));
      return ready.some((body) => (body as { region?: { forwarder?: boolean } }).region?.forwarder === true);
    },
    30_000,
    200,
  );
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await edgeB?.close();
  await b?.close();
  await Promise.all(replicasA.map((r) => r.proc.stop()));
  await producer?.disconnect();
  await redisB?.stop();
});

describe('invalidations across regions', () => {
  it("a write acknowledged in region A purges region B's store and edge, and the lag is measured per source region", async () => {
    const ns = uniqueName('xr');
    await seedB(ns, 'k', 'b-old');
    expect((await edgeGet(ns, 'k')).body).toBe('b-old');
    expect((await edgeGet(ns, 'k')).cache).toBe('HIT');
    const lagBefore = await metric(b.url, 'strata_cross_region_lag_seconds_count', { source_region: 'a' });

    await put(replicasA[0]!.url, ns, 'k', 'a-new');
    await eventually(
      'B store and edge dropped k',
      async () => !inEdgeTier(ns, 'k') && (await b.store.get(ns, 'k')) === null,
      20_000,
    );
    // Values never cross: B misses, it does not get A's value.
    expect((await edgeGet(ns, 'k')).status).toBe(404);
    expect(await metric(b.url, 'strata_cross_region_lag_seconds_count', { source_region: 'a' })).toBeGreaterThan(
      lagBefore,
    );
    // A's replicas read their own region's event back and skip it.
    await eventually(
      'A skipped its own event',
      async () => {
        const own = await Promise.all(
          replicasA.map((r) => metric(r.url, 'strata_invalidation_events_total', { result: 'own_region' })),
        );
        return own.some((n) => n > 0);
      },
      10_000,
    );
    // B applied it through its own purge log, marked as A's: B's forwarder does not send it back.
    const events = await topicEvents(ns, (seen) => seen.length >= 1);
    expect(events.map((e) => e.event.origin_region)).toEqual(['a']);
  });

  it("every replica of a region hears the other region's canary, whichever replica's consumer applied it", async () => {
    // A's two replicas split the topic's partitions in their group; B's canary key lands on one of them.
    const sources = async (url: string) =>
      ((await (await fetch(`${url}/ready`)).json()) as { region: { sources: Record<string, { lag_ms: number }> } })
        .region.sources;
    for (const replica of replicasA) {
      const heard = await eventually(
        `${replica.url} hears B's canary`,
        async () => (await sources(replica.url)).b,
        20_000,
        100,
      );
      expect(heard.lag_ms).toBeGreaterThanOrEqual(0);
      expect(
        await metric(replica.url, 'strata_cross_region_canary_lag_seconds_count', { source_region: 'b' }),
      ).toBeGreaterThan(0);
    }
  });

  it('an event is applied once per id, and a poison message goes to the dead-letter topic while the partition moves on', async () => {
    const ns = uniqueName('xr-once');
    await seedB(ns, 'k', 'v1');
    await put(replicasA[1]!.url, ns, 'k', 'a');
    const [forwarded] = await topicEvents(ns, (seen) => seen.length >= 1);
    await eventually('B applied the first event', async () => (await b.store.get(ns, 'k')) === null, 20_000);

    // The same event twice more (a forwarder re-sending after a crash): skipped by id.
    const duplicatesBefore = await metric(b.url, 'strata_invalidation_events_total', { result: 'duplicate' });
    await seedB(ns, 'k', 'v2');
    const value = JSON.stringify(forwarded!.event);
    await producer.send({
      topic,
      messages: [
        { key: forwarded!.key, value },
        { key: forwarded!.key, value },
      ],
    });
    await eventually(
      'two duplicates counted',
      async () =>
        (await metric(b.url, 'strata_invalidation_events_total', { result: 'duplicate' })) >= duplicatesBefore + 2,
      20_000,
    );
    expect(new TextDecoder().decode((await b.store.get(ns, 'k'))?.value)).toBe('v2');

    // Poison, then a valid event for the same key (same partition) behind it.
    const poison = `not json ${uniqueName('poison')}`;
    await producer.send({ topic, messages: [{ key: forwarded!.key, value: poison }] });
    await put(replicasA[1]!.url, ns, 'k', 'a2');
    await eventually(
      'B applied the event behind the poison',
      async () => (await b.store.get(ns, 'k')) === null,
      20_000,
    );
    const dead = await readTopic(brokers, `${topic}.dlq`, 1);
    expect(dead.some((m) => m.value === poison)).toBe(true);
  });

  it("a namespace flush in region A flushes it in region B, and B's flush is not sent back", async () => {
    const ns = uniqueName('xr-flush');
    await seedB(ns, 'k', 'b-old');
    expect((await edgeGet(ns, 'k')).body).toBe('b-old');
    const res = await fetch(`${replicasA[0]!.url}/api/v1/namespaces/${ns}/flush`, { method: 'POST' });
    expect(res.status).toBe(200);
    await eventually(
      'B edge no longer serves the namespace',
      async () => (await edgeGet(ns, 'k')).status === 404,
      20_000,
    );
    expect((await b.service.get(ns, 'k')).entry).toBeNull();
    // One flush crossed, from A; B's own flush (marked as A's) stayed in B.
    const flushes = await topicEvents(
      (event) => event.type === 'reset' && Array.isArray(event.namespaces) && event.namespaces.includes(ns),
      (seen) => seen.length >= 1,
    );
    expect(flushes.map((f) => [f.event.origin_region, f.event.reason])).toEqual([['a', 'namespace flushed']]);
  });

  it('SIGKILL of the forwarding replica mid-stream: the other takes over, nothing lost or reordered per key', async () => {
    const ns = uniqueName('xr-kill');
    const leader = await eventually(
      'a region A forwarder',
      async () => {
        for (const r of replicasA) if (await forwards(r.url)) return r;
        return undefined;
      },
      10_000,
      100,
    );
    const survivor = replicasA.find((r) => r !== leader)!;
    const writes = 60;
    for (let i = 0; i < writes; i++) {
      if (i === 20) leader.proc.child.kill('SIGKILL');
      await put(survivor.url, ns, `k${i % 5}`, `v${i}`);
    }
    expect(await leader.proc.exited).toBeNull();
    const events = await topicEvents(ns, (seen) => distinctIds(seen) >= writes, 40_000);
    expect(distinctIds(events)).toBe(writes);
    // Per key, first occurrences in topic order follow the purge log's order (stream ids increase).
    const perKey = firstOccurrencesPerKey(events);
    expect(perKey.size).toBe(5);
    for (const sequence of perKey.values()) expect(increasing(sequence)).toBe(true);
    await eventually('the survivor forwards', () => forwards(survivor.url), 10_000);
  });

  it('retention exceeded while Kafka is unreachable: the region sends a reset, and B holds nothing of the touched namespace', async () => {
    const ns = uniqueName('xr-reset');
    await seedB(ns, 'old', 'b-old');
    expect((await edgeGet(ns, 'old')).body).toBe('b-old');
    const logC = ownPurgeLogKey();
    const closedPort = await freePort();
    const envC = { REDIS_URL: redisUrl, PURGE_LOG_KEY: logC, PURGE_BUFFER_SIZE: '5', KAFKA_GROUP_ID: uniqueName('c') };
    // Region C with Kafka unreachable: writes are acknowledged (the log is in Redis), nothing is forwarded.
    const cut = await originFor(regionEnv('c', { ...envC, KAFKA_BROKERS: `127.0.0.1:${closedPort}` }));
    try {
      await eventually('C holds the forwarding lease', () => cut.regions.forwarder?.status().leader === true, 10_000);
      for (let i = 0; i < 20; i++) {
        await cut.service.set(ns, `k${i}`, { value: text.encode('c'), contentType: 'text/plain', ttlSeconds: 600 });
      }
    } finally {
      await cut.close();
    }
    const resetsBefore = await metric(b.url, 'strata_region_resets_total', {
      direction: 'received',
      source_region: 'c',
    });
    // Kafka back: the next forwarder finds entries trimmed before they were sent.
    const healed = await originFor(regionEnv('c', envC));
    cleanups.push(() => healed.close());
    await eventually(
      'B applied the reset from C',
      async () =>
        (await metric(b.url, 'strata_region_resets_total', { direction: 'received', source_region: 'c' })) >
        resetsBefore,
      30_000,
    );
    // The namespace was flushed in B: its old entries are invisible to B's origin and edge.
    expect((await b.service.get(ns, 'old')).entry).toBeNull();
    await eventually(
      'B edge no longer serves the namespace',
      async () => (await edgeGet(ns, 'old')).status === 404,
      10_000,
    );
    const [reset] = await topicEvents(
      (event) => event.type === 'reset' && event.origin_region === 'c',
      (seen) => seen.length >= 1,
    );
    expect(reset!.event.namespaces).toEqual([ns]);
    expect(String(reset!.event.reason)).toMatch(/trimmed before/);
  });
});
