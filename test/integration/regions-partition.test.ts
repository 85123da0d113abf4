/**
 * Two regions partitioned with Toxiproxy: each region reaches Kafka only
 * through its own proxy (20 ms each way) that the broker advertises on that
 * region's listener, so every connection its clients make, bootstrap and
 * after, crosses it. The broker is this file's own: its listeners differ from
 * the shared one's. Region A runs the staleness canary every second.
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
const behindA = async () =>
  value(await scrape(b.url), 'strata_cross_region_source_behind_seconds', { source_region: 'a' });
interface RegionDetail {
  behind_seconds: number;
  forward_behind_seconds: number | null;
  sources: Record<string, { canary_at: string; behind_seconds: number; lag_ms: number }>;
}
const ready = async (url: string) => ((await (await fetch(`${url}/ready`)).json()) as { region: RegionDetail }).region;

beforeAll(async () => {
  const dir = inject('serversDir');
  const [proxyPort, proxyPortA] = await Promise.all([freePort(), freePort()]);
  [kafka, toxiproxy, redisB] = await Promise.all([
    startKafka({
      dir: join(dir, uniqueName('kafka-regions')),
      extraListeners: [
        { name: 'REGION_B', protocol: 'PLAINTEXT', advertised: `127.0.0.1:${proxyPort}` },
        { name: 'REGION_A', protocol: 'PLAINTEXT', advertised: `127.0.0.1:${proxyPortA}` },
      ],
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
  await latencyProxy(
    toxiproxy.client,
    'kafka-a',
    `127.0.0.1:${proxyPortA}`,
    `127.0.0.1:${kafka.listenerPorts.REGION_A}`,
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
  a = await originFor({
    ...common,
    STRATA_REGION: 'a',
    REDIS_URL: inject('redisUrl'),
    KAFKA_BROKERS: `127.0.0.1:${proxyPortA}`,
    PURGE_CANARY_SECONDS: '1',
  });
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

    const before = await scrape(b.url);
    const countBefore = value(before, 'strata_cross_region_lag_seconds_count', { source_region: 'a' });
    const lagged2Before = value(before, 'strata_cross_region_lag_seconds_bucket', { source_region: 'a', le: '2.5' });
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
    // A's events (its write and its canary's) waited out the partition: some lagged at least the 3 s B was
    // behind, none more than the partition lasted.
    const lagged = (le: string) => value(samples, 'strata_cross_region_lag_seconds_bucket', { source_region: 'a', le });
    const count = value(samples, 'strata_cross_region_lag_seconds_count', { source_region: 'a' });
    expect(count - lagged('2.5') - (countBefore - lagged2Before)).toBeGreaterThan(0);
    const bound = ['5', '10', '30', '60'].find((le) => Number(le) * 1000 >= healedAfterMs + 1_000)!;
    expect(lagged(bound)).toBe(count);
    await eventually('B caught up again', async () => (await behind()) < 2, 20_000, 200);
    // A's forwarder kept its lease all along (renewed every third of REGION_FORWARD_LEASE_MS, never lost).
    const held = a.regions.forwarder?.status();
    expect(held?.leader).toBe(true);
    expect(held!.leaderSince).toBeLessThan(cutAt);
  });

  it("when region A cannot reach Kafka, B is caught up with the topic yet its canary view of A falls behind, and A's forwarder says how long its oldest purge waits", async () => {
    await eventually('B hears A canary', async () => (await behindA()) > 0 && (await behindA()) < 3, 20_000, 200);
    expect((await ready(b.url)).sources.a?.lag_ms).toBeGreaterThanOrEqual(0);
    const ns = uniqueName('cut-a');
    await b.store.set(ns, 'k', { value: text.encode('b-old'), contentType: 'text/plain', ttlMs: 600_000, tags: [] });

    await setProxyEnabled(toxiproxy.client, 'kafka-a', false);
    const cutAt = Date.now();
    await a.service.set(ns, 'k', { value: text.encode('a-new'), contentType: 'text/plain', ttlSeconds: 600 });
    await eventually('B canary view of A is 4 s behind', async () => (await behindA()) >= 4, 30_000, 200);
    // B's own consumer is fine: the topic simply has nothing new, so only the canary shows the gap.
    expect(await behind()).toBeLessThan(3);
    const detail = await ready(b.url);
    expect(detail.sources.a!.behind_seconds).toBeGreaterThanOrEqual(4);
    expect(Date.parse(detail.sources.a!.canary_at)).toBeLessThanOrEqual(cutAt + 1_000);
    expect(await b.store.get(ns, 'k')).not.toBeNull();
    // A's side: its forwarder holds purges Kafka has not taken, and says since when.
    await eventually(
      'A reports its oldest unforwarded purge',
      async () => ((await ready(a.url)).forward_behind_seconds ?? 0) >= 2,
      20_000,
      200,
    );
    expect(value(await scrape(a.url), 'strata_region_forward_behind_seconds')).toBeGreaterThanOrEqual(2);

    await setProxyEnabled(toxiproxy.client, 'kafka-a', true);
    await eventually('B purged k after the heal', async () => (await b.store.get(ns, 'k')) === null, 40_000, 200);
    await eventually('B canary view of A is current again', async () => (await behindA()) < 3, 30_000, 200);
    await eventually('A forwarded everything', async () => (await ready(a.url)).forward_behind_seconds === 0, 20_000);
    // The canary writes that waited out the cut arrived late, and the canary lag histogram shows it.
    const samples = await scrape(b.url);
    const slowest = value(samples, 'strata_cross_region_canary_lag_seconds_bucket', { source_region: 'a', le: '2.5' });
    const all = value(samples, 'strata_cross_region_canary_lag_seconds_count', { source_region: 'a' });
    expect(all).toBeGreaterThan(slowest);
  });
});
