import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import { type RunningRedis, startRedis } from '../../scripts/services/redis.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * Two origin replicas on one real Redis share the region's purge log: what
 * one acknowledges reaches the edges of the other, positions are valid at
 * both, and a wiped log resets every edge.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
const track = <T extends { close(): Promise<void> }>(thing: T): T => {
  cleanups.push(() => thing.close());
  return thing;
};

let logs = 0;
const regionEnv = () => ({
  REDIS_URL: inject('redisUrl'),
  PURGE_LOG_KEY: `{replicas-test-${process.pid}-${++logs}}`,
  PURGE_HEARTBEAT_SECONDS: '1',
});

const put = (base: string, key: string, body: string) =>
  fetch(`${base}/api/v1/cache/replicas/${key}?ttl=60`, { method: 'PUT', body });
const read = async (base: string, key: string) => {
  const res = await fetch(`${base}/api/v1/cache/replicas/${key}`);
  return { status: res.status, body: await res.text() };
};

/** A seeded generator (mulberry32), so a failing schedule can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('two origin replicas on one Redis share the purge log', () => {
  it('a write acknowledged by replica 1 purges the copy an edge of replica 2 holds', async () => {
    const env = regionEnv();
    const [one, two] = [track(await originFor(env)), track(await originFor(env))];
    const edgeTwo: RunningEdge = track(await edgeFor(two.url, { EDGE_MAX_TTL_SECONDS: '60' }));
    expect((await put(one.url, 'k', 'v1')).status).toBe(200);
    expect((await read(edgeTwo.url, 'k')).body).toBe('v1');
    expect((await put(one.url, 'k', 'v2')).status).toBe(200);
    await eventually('the edge of replica 2 to serve v2', async () => (await read(edgeTwo.url, 'k')).body === 'v2');
    expect(one.bus.health().position).toBe(two.bus.health().position);
  });

  it('seeded random writes at both replicas, reads at edges of both: no read older than a value acknowledged a propagation bound earlier', async () => {
    const env = regionEnv();
    const origins = [track(await originFor(env)), track(await originFor(env))];
    const edges = [
      track(await edgeFor(origins[0]!.url, { EDGE_MAX_TTL_SECONDS: '60' })),
      track(await edgeFor(origins[1]!.url, { EDGE_MAX_TTL_SECONDS: '60' })),
    ];
    // Generous for a shared 2-core machine; the bench measures the real figure.
    const boundMs = 1_000;
    const random = seeded(11);
    const keys = ['a', 'b', 'c'];
    /** Per key: [value number, ack time] of every acknowledged write. */
    const acked = new Map<string, { n: number; at: number }[]>(keys.map((k) => [k, []]));
    let counter = 0;
    let stale = 0;
    let reads = 0;
    const deadline = Date.now() + 4_000;
    const writer = async (index: number) => {
      while (Date.now() < deadline) {
        const key = keys[Math.floor(random() * keys.length)]!;
        const n = ++counter;
        const target = random() < 0.5 ? origins[index]!.url : edges[index]!.url;
        const res = await put(target, key, String(n));
        if (res.status === 200) acked.get(key)!.push({ n, at: Date.now() });
      }
    };
    const reader = async (edge: RunningEdge) => {
      while (Date.now() < deadline) {
        const key = keys[Math.floor(random() * keys.length)]!;
        const startedAt = Date.now();
        const res = await read(edge.url, key);
        if (res.status !== 200) continue;
        reads += 1;
        const seen = Number(res.body);
        // The newest value acknowledged more than the bound before this read began must not be newer than what was seen.
        const floor = acked
          .get(key)!
          .filter((w) => w.at < startedAt - boundMs)
          .reduce((max, w) => Math.max(max, w.n), 0);
        if (seen < floor) stale += 1;
      }
    };
    await Promise.all([writer(0), writer(1), reader(edges[0]!), reader(edges[1]!), reader(edges[1]!)]);
    expect(reads).toBeGreaterThan(50);
    expect(acked.get('a')!.length + acked.get('b')!.length + acked.get('c')!.length).toBeGreaterThan(20);
    expect(stale).toBe(0);
  });

  it('an edge moved from replica 1 to replica 2 (same address) resumes without a reset', async () => {
    const env = regionEnv();
    const one = await originFor(env);
    let current = one;
    cleanups.push(() => current.close());
    const two = track(await originFor(env));
    const edge: RunningEdge = track(await edgeFor(one.url, { EDGE_MAX_TTL_SECONDS: '60' }));
    await put(one.url, 'x', 'X');
    expect((await read(edge.url, 'x')).body).toBe('X');
    await put(two.url, 'other', 'O');
    await eventually(
      'the edge to apply replica 2 purge',
      () => edge.subscription.position === two.bus.health().position,
    );
    const port = String(one.port);
    await one.close();
    // Another replica takes replica 1's address, as behind a load balancer.
    current = await originFor({ ...env, ORIGIN_PORT: port });
    await put(two.url, 'later', 'L');
    await eventually(
      'the edge to reconnect and catch up',
      () => edge.subscription.position === current.bus.health().position,
      15_000,
      50,
    );
    // No reset: the copy of x it held is still there and still served from the edge.
    expect(edge.cache.tier.size).toBeGreaterThanOrEqual(1);
    expect((await read(edge.url, 'x')).body).toBe('X');
    expect(edge.originLoads).toBe(1);
  });

  it('a wiped log (what a Redis restart without persistence leaves) resets every edge of every replica', async () => {
    const env = regionEnv();
    const origins = [track(await originFor(env)), track(await originFor(env))];
    const edges = [
      track(await edgeFor(origins[0]!.url, { EDGE_MAX_TTL_SECONDS: '60' })),
      track(await edgeFor(origins[1]!.url, { EDGE_MAX_TTL_SECONDS: '60' })),
    ];
    await put(origins[0]!.url, 'w', 'W');
    for (const edge of edges) expect((await read(edge.url, 'w')).body).toBe('W');
    const redis = new Redis(inject('redisUrl'));
    try {
      await redis.del(`${env.PURGE_LOG_KEY}:stream`, `${env.PURGE_LOG_KEY}:meta`);
    } finally {
      redis.disconnect();
    }
    await eventually('every edge to drop its tier', () => edges.every((e) => e.cache.tier.size === 0), 10_000);
    const [, incarnation] = origins[0]!.bus.health().position.split(':');
    for (const edge of edges) expect(edge.subscription.position?.split(':')[1]).toBe(incarnation);
  });
});

describe('a replica whose Redis is gone', () => {
  let redis: RunningRedis | undefined;
  afterEach(async () => {
    await redis?.stop();
    redis = undefined;
  });

  it('says tail_live false in heartbeats and answers 503 on /ready', async () => {
    redis = await startRedis({ dir: join(inject('serversDir'), `redis-${process.pid}-tail-liveness`) });
    const origin = track(
      await originFor({ REDIS_URL: redis.url, PURGE_HEARTBEAT_SECONDS: '1', BREAKER_MIN_REQUESTS: '1' }),
    );
    const edge = track(await edgeFor(origin.url));
    expect((await fetch(`${origin.url}/ready`)).status).toBe(200);
    await eventually('a live confirmation', () => edge.subscription.confirmation?.tailLive === true, 5_000);
    await redis.stop();
    redis = undefined;
    await eventually('the tail to be reported dead', () => !origin.bus.health().tailLive, 10_000);
    await eventually(
      'a heartbeat saying the tail is not live',
      () => edge.subscription.confirmation?.tailLive === false,
    );
    const ready = await fetch(`${origin.url}/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { error: { code: string } }).error.code).toBe('CACHE_005');
  });
});

describe('purge log metrics', () => {
  it('count relayed entries and skipped malformed ones, and report the log length and lag', async () => {
    const env = regionEnv();
    const origin = track(await originFor(env));
    const redis = new Redis(inject('redisUrl'));
    try {
      await redis.xadd(`${env.PURGE_LOG_KEY}:stream`, '*', 'written', 'by hand');
    } finally {
      redis.disconnect();
    }
    expect((await put(origin.url, 'm', 'M')).status).toBe(200);
    const metric = (text: string, name: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.split(' ').at(-1));
    };
    const text = await eventually('the malformed entry to be counted', async () => {
      const body = await (await fetch(`${origin.url}/metrics`)).text();
      return metric(body, 'strata_purge_log_malformed_total') === 1 ? body : null;
    });
    expect(metric(text, 'strata_purge_log_relayed_total')).toBe(1);
    // The hand-written entry, the write's intent and its purge (intents are logged, not relayed).
    expect(metric(text, 'strata_purge_log_length')).toBe(3);
    expect(metric(text, 'strata_purge_log_lag_entries')).toBe(0);
  });
});

describe('a change whose purge the log cannot confirm', () => {
  it('answers 503 CACHE_005 when WAIT gets fewer replicas than required, so the client retries', async () => {
    const origin = track(
      await originFor({ ...regionEnv(), PURGE_LOG_WAIT_REPLICAS: '1', PURGE_LOG_WAIT_TIMEOUT_MS: '100' }),
    );
    const res = await put(origin.url, 'unconfirmed', 'U');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CACHE_005');
  });
});
