/**
 * Two regions partitioned with Toxiproxy: region B reaches Kafka only through
 * a proxy (20 ms each way) that the broker advertises on B's own listener, so
 * every connection B's clients make, bootstrap and after, crosses it. The
 * broker is this file's own: its listeners differ from the shared one's.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { type RunningKafka, startKafka } from '../../scripts/services/kafka.ts';
import { type RunningRedis, startRedis } from '../../scripts/services/redis.ts';
import {
  latencyProxy,
  type RunningToxiproxy,
  setProxyEnabled,
  startToxiproxy,
} from '../../scripts/services/toxiproxy.ts';
import { createTopics, uniqueName } from '../support/kafka.ts';
import { scrape, value } from '../support/prometheus.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const text = new TextEncoder();
let kafka: RunningKafka;
let toxiproxy: RunningToxiproxy;
let redisB: RunningRedis;
let a: RunningOrigin;
let b: RunningOrigin;
let edgeB: RunningEdge;

const behind = async () => value(await scrape(b.url), 'strata_cross_region_behind_seconds');

beforeAll(async () => {
  const dir = inject('serversDir');
  const proxyPort = await freePort();
  [kafka, toxiproxy, redisB] = await Promise.all([
    startKafka({
      dir: join(dir, uniqueName('kafka-regions')),
      extraListeners: [{ name: 'REGION_B', protocol: 'PLAINTEXT', advertised: `127.0.0.1:${proxyPort}` }],
    }),
    startToxiproxy({ dir: join(dir, uniqueName('toxiproxy')) }),
    startRedis({ dir: join(dir, uniqueName('redis-b')) }),
  ]);
  await latencyProxy(
    toxiproxy.client,
    'kafka-b',
    `127.0.0.1:${proxyPort}`,
    `127.0.0.1:${kafka.listenerPorts.REGION_B}`,
    20,
  );
  const topic = uniqueName('inv-partition');
  await createTopics(kafka.brokers, topic);
  const common = {
    KAFKA_INVALIDATION_TOPIC: topic,
    KAFKA_FROM_BEGINNING: 'true',
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    KAFKA_HEARTBEAT_INTERVAL_MS: '500',
    REGION_FORWARD_LEASE_MS: '1500',
  };
  a = await originFor({ ...common, STRATA_REGION: 'a', REDIS_URL: inject('redisUrl'), KAFKA_BROKERS: kafka.brokers });
  b = await originFor({
    ...common,
    STRATA_REGION: 'b',
    REDIS_URL: redisB.url,
    KAFKA_BROKERS: `127.0.0.1:${proxyPort}`,
  });
  await Promise.all([a.invalidations.ready(), b.invalidations.ready()]);
  edgeB = await edgeFor(b.url, { EDGE_MAX_TTL_SECONDS: '600' });
}, 120_000);

afterAll(async () => {
  await edgeB?.close();
  await b?.close();
  await a?.close();
  await Promise.all([kafka?.stop(), toxiproxy?.stop(), redisB?.stop()]);
});

describe('a partition between regions', () => {
  it('B keeps serving and reports how far behind it is; after the heal it catches up and the lag shows the partition', async () => {
    const ns = uniqueName('cut');
    await b.store.set(ns, 'k', { value: text.encode('b-old'), contentType: 'text/plain', ttlMs: 600_000, tags: [] });
    const edgeGet = async () => {
      const res = await fetch(`${edgeB.url}/api/v1/cache/${ns}/k`);
      return { status: res.status, cache: res.headers.get('X-Cache'), body: await res.text() };
    };
    expect((await edgeGet()).body).toBe('b-old');
    await eventually('B caught up with the topic', async () => (await behind()) < 2, 15_000, 100);

    await setProxyEnabled(toxiproxy.client, 'kafka-b', false);
    const cutAt = Date.now();
    await a.service.set(ns, 'k', { value: text.encode('a-new'), contentType: 'text/plain', ttlSeconds: 600 });
    // The link is down: B still serves what it has, and says it is falling behind.
    await eventually('B reports it is behind', async () => (await behind()) >= 3, 20_000, 200);
    expect(await edgeGet()).toMatchObject({ status: 200, body: 'b-old' });
    const ready = (await (await fetch(`${b.url}/ready`)).json()) as { region: { behind_seconds: number } };
    expect(ready.region.behind_seconds).toBeGreaterThanOrEqual(3);

    await setProxyEnabled(toxiproxy.client, 'kafka-b', true);
    await eventually('B purged k after the heal', async () => (await b.store.get(ns, 'k')) === null, 30_000, 100);
    await eventually('B edge dropped k', () => edgeB.cache.tier.get(ns, 'k') === undefined, 10_000);
    const healedAfterMs = Date.now() - cutAt;
    const samples = await scrape(b.url);
    // The one event from A waited out the partition: its lag is at least the time B was behind.
    expect(value(samples, 'strata_cross_region_lag_seconds_count', { source_region: 'a' })).toBe(1);
    const lagSeconds = value(samples, 'strata_cross_region_lag_seconds_sum', { source_region: 'a' });
    expect(lagSeconds).toBeGreaterThanOrEqual(3);
    expect(lagSeconds * 1000).toBeLessThanOrEqual(healedAfterMs + 1_000);
    await eventually('B caught up again', async () => (await behind()) < 2, 20_000, 200);
    // A's forwarder kept its lease all along (renewed every third of REGION_FORWARD_LEASE_MS, never lost).
    const held = a.regions.forwarder?.status();
    expect(held?.leader).toBe(true);
    expect(held!.leaderSince).toBeLessThan(cutAt);
  });
});
