import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { redisStore } from '../../origin/store/redis.ts';
import type { Store } from '../../origin/store/store.ts';
import {
  connectProducer,
  createTopics,
  invalidation,
  kafkaOriginEnv,
  produceEvents,
  readTopic,
  uniqueName,
} from '../support/kafka.ts';
import { type Sample, scrape, value } from '../support/prometheus.ts';
import { type CuttableProxy, cuttableProxy } from '../support/proxy.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const brokers = inject('kafkaBrokers');
const redisUrl = inject('redisUrl');
const text = new TextEncoder();

let topic: string;
let producer: Producer;
let store: Store;
let origin: RunningOrigin;
let edges: RunningEdge[];

async function seed(namespace: string, key: string, value: string, tags: string[] = []): Promise<void> {
  await store.set(namespace, key, { value: text.encode(value), contentType: 'text/plain', ttlMs: 600_000, tags });
}

async function edgeGet(edge: RunningEdge, namespace: string, key: string) {
  const res = await fetch(`${edge.url}/api/v1/cache/${namespace}/${encodeURIComponent(key)}`);
  return { status: res.status, cache: res.headers.get('X-Cache'), body: await res.text() };
}

/** Reads through every edge until each holds the key in its tier (a HIT). */
async function warm(namespace: string, keys: string[]): Promise<void> {
  for (const edge of edges) {
    for (const key of keys) {
      await edgeGet(edge, namespace, key);
      expect((await edgeGet(edge, namespace, key)).cache).toBe('HIT');
    }
  }
}

const inTier = (edge: RunningEdge, namespace: string, key: string) => edge.cache.tier.get(namespace, key) !== undefined;

beforeAll(async () => {
  topic = uniqueName('inv');
  await createTopics(brokers, topic);
  producer = await connectProducer(brokers);
  store = redisStore({ url: redisUrl });
  origin = await originFor({ REDIS_URL: redisUrl, ...kafkaOriginEnv(brokers, topic, uniqueName('group')) });
  await origin.invalidations.ready();
  // Edges keep entries a minute, so only a purge (never expiry) can explain a miss.
  edges = await Promise.all([0, 1].map(() => edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '60' })));
});

afterAll(async () => {
  await Promise.all(edges?.map((e) => e.close()) ?? []);
  await origin?.close();
  await producer?.disconnect();
  await store?.close();
});

describe('Kafka invalidation → origin → every edge', () => {
  it('a delete event for a key cached at two edges makes both miss, then refill from the store', async () => {
    const ns = uniqueName('del');
    await seed(ns, 'char:1', 'old');
    await seed(ns, 'char:2', 'other');
    await warm(ns, ['char:1', 'char:2']);

    await produceEvents(producer, topic, [invalidation({ namespace: ns, keys: ['char:1'] })]);
    await eventually('both edges dropped char:1', () => edges.every((e) => !inTier(e, ns, 'char:1')), 10_000);
    expect(await store.get(ns, 'char:1')).toBeNull();
    for (const edge of edges) {
      expect(inTier(edge, ns, 'char:2')).toBe(true);
      expect((await edgeGet(edge, ns, 'char:1')).status).toBe(404);
    }

    await seed(ns, 'char:1', 'new');
    for (const edge of edges) {
      expect(await edgeGet(edge, ns, 'char:1')).toMatchObject({ status: 200, cache: 'MISS', body: 'new' });
      expect(await edgeGet(edge, ns, 'char:1')).toMatchObject({ status: 200, cache: 'HIT', body: 'new' });
    }
  });

  it('tag and prefix purges reach both edges and leave entries outside them untouched', async () => {
    const ns = uniqueName('sel');
    await seed(ns, 'p1', 'a', ['team-red']);
    await seed(ns, 'p2', 'b', ['team-red', 'team-blue']);
    await seed(ns, 'p3', 'c', ['team-blue']);
    await seed(ns, 'user:1:name', 'd');
    await seed(ns, 'user:1:mail', 'e');
    await seed(ns, 'user:2:name', 'f');
    const all = ['p1', 'p2', 'p3', 'user:1:name', 'user:1:mail', 'user:2:name'];
    await warm(ns, all);

    await produceEvents(producer, topic, [
      invalidation({ namespace: ns, tags: ['team-red'] }),
      invalidation({ namespace: ns, prefix: 'user:1:', action: 'update' }),
    ]);
    const purged = ['p1', 'p2', 'user:1:name', 'user:1:mail'];
    await eventually(
      'tag and prefix members dropped at both edges',
      () => edges.every((e) => purged.every((k) => !inTier(e, ns, k))),
      10_000,
    );
    for (const edge of edges) {
      expect(inTier(edge, ns, 'p3')).toBe(true);
      expect(inTier(edge, ns, 'user:2:name')).toBe(true);
      expect(await edgeGet(edge, ns, 'p3')).toMatchObject({ cache: 'HIT', body: 'c' });
    }
    for (const k of purged) expect(await store.get(ns, k)).toBeNull();
    expect(await store.get(ns, 'p3')).not.toBeNull();
    expect(await store.get(ns, 'user:2:name')).not.toBeNull();
  });

  it('a poison message goes to the DLQ with its reason and later events on its partition are applied', async () => {
    const ns = uniqueName('poison');
    await seed(ns, 'after', 'x');
    const key = `${ns}:same-partition`;
    await producer.send({
      topic,
      messages: [
        { key, value: '{not json' },
        {
          key,
          value: JSON.stringify({ id: 'e1', namespace: 'Bad Namespace!', keys: ['a'], action: 'delete', timestamp: 1 }),
        },
        { key, value: JSON.stringify(invalidation({ namespace: ns, keys: ['after'] })) },
      ],
    });
    await eventually(
      'the event after the poison messages was applied',
      async () => (await store.get(ns, 'after')) === null,
      10_000,
    );
    const dead = await readTopic(brokers, `${topic}.dlq`, 2);
    const mine = dead.filter((m) => m.key === key);
    expect(mine).toHaveLength(2);
    expect(mine[0]!.value).toBe('{not json');
    expect(mine[0]!.headers['strata-error']).toMatch(/not JSON/);
    expect(mine[1]!.headers['strata-error']).toMatch(/namespace/);
    expect(mine[1]!.headers['strata-source-topic']).toBe(topic);
    expect(Number(mine[1]!.headers['strata-source-offset'])).toBeGreaterThanOrEqual(0);
  });

  it('events sharing a message key reach the purge bus in the order they were produced', async () => {
    const ns = uniqueName('order');
    const seen: string[] = [];
    const unsubscribe = origin.bus.observe((m) => {
      if (m.namespace === ns) seen.push(m.keys[0] ?? m.tags[0]!);
    });
    try {
      // Message key `ns` for the ordered run, interleaved with events of other message keys. Tag purges
      // (several store round trips) alternate with key purges (one), so applying them concurrently would reorder.
      const ordered = Array.from({ length: 60 }, (_, i) => `o${i}`);
      const selector = (k: string, i: number) => (i % 2 === 0 ? { tags: [k] } : { keys: [k] });
      await producer.send({
        topic,
        messages: ordered.flatMap((k, i) => [
          { key: ns, value: JSON.stringify(invalidation({ namespace: ns, ...selector(k, i) })) },
          { key: `${ns}:other${i}`, value: JSON.stringify(invalidation({ namespace: ns, keys: [`x${i}`] })) },
        ]),
      });
      await eventually('all events applied', () => seen.length === 120, 10_000);
      expect(seen.filter((k) => k.startsWith('o'))).toEqual(ordered);
    } finally {
      unsubscribe();
    }
  });

  it('an event delivered twice is applied once (idempotency by id)', async () => {
    const ns = uniqueName('dup');
    const event = invalidation({ namespace: ns, keys: ['k'] });
    const sentinel = invalidation({ namespace: ns, keys: ['k'] });
    // Purges relayed from here on, counted by observing the bus (the log's seq also numbers each change's intent).
    let relayed = 0;
    origin.bus.observe(() => relayed++);
    const timed = (samples: Sample[]) => ({
      lag: value(samples, 'strata_invalidation_lag_seconds_count', { source: 'kafka' }),
      apply: value(samples, 'strata_invalidation_apply_seconds_count', { source: 'kafka' }),
    });
    const timedBefore = timed(await scrape(origin.url));
    // Same message key, same partition: the sentinel is applied after both copies.
    await produceEvents(producer, topic, [event, event, sentinel]);
    await eventually(
      'the duplicate was recognised',
      async () => {
        const metrics = await (await fetch(`${origin.url}/metrics`)).text();
        return /strata_invalidation_events_total\{[^}]*result="duplicate"[^}]*\} [1-9]/.test(metrics);
      },
      10_000,
      50,
    );
    await eventually('the sentinel was applied', () => relayed >= 2, 10_000);
    expect(relayed).toBe(2);
    const metrics = await (await fetch(`${origin.url}/metrics`)).text();
    expect(metrics).toMatch(/strata_invalidation_events_total\{[^}]*source="kafka"[^}]*result="applied"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/strata_invalidation_consumer_lag_messages\{[^}]*partition="\d"[^}]*\} 0/);
    // Both applied events (not the duplicate) were timed: lag since their timestamp, and the apply alone.
    const after = timed(await scrape(origin.url));
    expect(after.lag - timedBefore.lag).toBe(2);
    expect(after.apply - timedBefore.apply).toBe(2);
  });

  it('a soft event marks the entries stale (soft-purge) at the origin and every edge, and removes those without grace', async () => {
    const ns = uniqueName('soft');
    const grace = { staleWhileRevalidateMs: 600_000, staleIfErrorMs: 0 };
    await store.set(ns, 'graced', {
      value: text.encode('kept'),
      contentType: 'text/plain',
      ttlMs: 600_000,
      tags: ['t'],
      grace,
    });
    await seed(ns, 'bare', 'dropped', ['t']);
    await warm(ns, ['graced', 'bare']);

    await produceEvents(producer, topic, [invalidation({ namespace: ns, tags: ['t'], soft: true })]);
    await eventually(
      'the store marked the entry soft-purged',
      async () => (await store.get(ns, 'graced'))?.softPurgedAtMs,
      10_000,
    );
    expect(await store.get(ns, 'bare')).toBeNull();
    for (const edge of edges) {
      await eventually(
        'the edge dropped both copies',
        () => !inTier(edge, ns, 'graced') && !inTier(edge, ns, 'bare'),
        10_000,
      );
      const res = await fetch(`${edge.url}/api/v1/cache/${ns}/graced`);
      expect(res.headers.get('X-Cache')).toBe('STALE');
      expect(res.headers.get('X-Cache-Stale-Reason')).toBe('soft-purge');
      expect(await res.text()).toBe('kept');
      expect((await edgeGet(edge, ns, 'bare')).status).toBe(404);
    }
  });
});

describe('edge disconnected from the purge stream', () => {
  let proxy: CuttableProxy;
  let cutOrigin: RunningOrigin;
  let edge: RunningEdge;
  let cutTopic: string;

  beforeAll(async () => {
    cutTopic = uniqueName('cut');
    await createTopics(brokers, cutTopic);
    // A replay buffer of 3 purges: a small gap replays, a larger one forces a reset.
    cutOrigin = await originFor({
      REDIS_URL: redisUrl,
      PURGE_BUFFER_SIZE: '3',
      ...kafkaOriginEnv(brokers, cutTopic, uniqueName('group')),
    });
    await cutOrigin.invalidations.ready();
    proxy = await cuttableProxy(cutOrigin.port);
    edge = await edgeFor(proxy.url, { EDGE_MAX_TTL_SECONDS: '60' });
  });

  afterAll(async () => {
    await edge?.close();
    await proxy?.close();
    await cutOrigin?.close();
  });

  async function partitionedPurge(ns: string, events: ReturnType<typeof invalidation>[]) {
    proxy.cut();
    await eventually('edge noticed the disconnect', () => !edge.subscription.connected);
    // Purges relayed, counted by observing the bus (the log's seq also numbers each change's intent).
    let relayed = 0;
    const stop = cutOrigin.bus.observe(() => relayed++);
    await produceEvents(producer, cutTopic, events);
    await eventually('origin applied the purges', () => relayed >= events.length, 10_000);
    stop();
    // While cut off, the edge may still serve what it holds (bounded by EDGE_MAX_TTL_SECONDS).
    expect(inTier(edge, ns, 'k0')).toBe(true);
    proxy.restore();
    await eventually(
      'edge caught up with the origin',
      () => edge.subscription.connected && edge.subscription.position === cutOrigin.bus.health().position,
      15_000,
    );
  }

  it('replays a small gap on reconnect and never serves the purged value', async () => {
    const ns = uniqueName('gap');
    for (const k of ['k0', 'k1', 'keep']) await seed(ns, k, `v-${k}`);
    for (const k of ['k0', 'k1', 'keep']) {
      await edgeGet(edge, ns, k);
      expect(inTier(edge, ns, k)).toBe(true);
    }
    await partitionedPurge(ns, [
      invalidation({ namespace: ns, keys: ['k0'] }),
      invalidation({ namespace: ns, keys: ['k1'] }),
    ]);
    expect(inTier(edge, ns, 'k0')).toBe(false);
    expect(inTier(edge, ns, 'k1')).toBe(false);
    // A replay, not a reset: the untouched entry survived.
    expect(inTier(edge, ns, 'keep')).toBe(true);
    expect((await edgeGet(edge, ns, 'k0')).status).toBe(404);
  });

  it('drops its whole tier when the gap exceeds the replay buffer, and never serves the purged value', async () => {
    const ns = uniqueName('reset');
    for (const k of ['k0', 'keep']) await seed(ns, k, `v-${k}`);
    for (const k of ['k0', 'keep']) await edgeGet(edge, ns, k);
    expect(inTier(edge, ns, 'keep')).toBe(true);
    await partitionedPurge(
      ns,
      ['k0', 'x1', 'x2', 'x3', 'x4'].map((k) => invalidation({ namespace: ns, keys: [k] })),
    );
    expect(edge.cache.tier.size).toBe(0);
    expect((await edgeGet(edge, ns, 'k0')).status).toBe(404);
    expect(await edgeGet(edge, ns, 'keep')).toMatchObject({ status: 200, cache: 'MISS', body: 'v-keep' });
  });
});
