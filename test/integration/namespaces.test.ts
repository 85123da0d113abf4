import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import { envWithConfigFile } from '../../origin/reload.ts';
import { type RunningOrigin, startOrigin } from '../../origin/server.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import {
  flushResponseSchema,
  namespaceStatsSchema,
  namespacesOverviewSchema,
  namespaceVersionInfoSchema,
  reloadResponseSchema,
} from '../../shared/schemas.ts';
import { edgeFor, originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const versionOf = (res: Response) => Number(/^"v(\d+)"$/.exec(res.headers.get('ETag') ?? '')?.[1]);

describe('namespace flush through two edges on real Redis', () => {
  let origin: RunningOrigin;
  let a: RunningEdge;
  let b: RunningEdge;
  const ns = `flush${Date.now().toString(36)}`;
  // A logical database of its own on the shared server: the reclaimer's walk is a SCAN of the whole keyspace at a
  // bounded rate, so the keys other test files leave behind (a warm test loads 100,000) would set how long it takes.
  const redisUrl = `${inject('redisUrl')}/8`;

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: redisUrl });
    a = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '60' });
    b = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '60' });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await origin?.close();
  });

  const url = (base: string, key: string) => `${base}/api/v1/cache/${ns}/${key}`;
  const put = async (base: string, key: string, body: string) => {
    const res = await fetch(`${url(base, key)}?ttl=300`, { method: 'PUT', body });
    expect(res.status).toBe(200);
    return ((await res.json()) as { version: number }).version;
  };

  it('after an acknowledged flush no edge and no store serves an old entry; racing writes are either before or visible after', async () => {
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    // Warm both edges with pre-flush copies.
    for (const key of keys) await put(origin.url, key, `pre-${key}`);
    for (const edge of [a, b]) for (const key of keys) expect((await fetch(url(edge.url, key))).status).toBe(200);
    expect(a.cache.tier.size).toBeGreaterThanOrEqual(keys.length);

    // Concurrent writers through both edges, recording every acknowledged write.
    const acked = new Map<string, { version: number; value: string }[]>();
    let stop = false;
    const writers = [a, b].map(async (edge, w) => {
      for (let i = 0; !stop; i++) {
        const key = keys[(i * 3 + w) % keys.length]!;
        const value = `w${w}-${i}`;
        const version = await put(edge.url, key, value);
        acked.set(key, [...(acked.get(key) ?? []), { version, value }]);
      }
    });
    await eventually('writers running', () => [...acked.values()].flat().length >= 10);

    const res = await fetch(`${origin.url}/api/v1/namespaces/${ns}/flush`, { method: 'POST' });
    expect(res.status).toBe(200);
    const flushed = flushResponseSchema.parse(await res.json());
    expect(flushed.service_id).toBe('anonymous');

    // Probe while writers go on: nothing below the flush version is served by the origin, nor by an edge once it has the flush.
    for (const edge of [a, b])
      await eventually('edge applied the flush', () => edge.cache.ledger.floor(ns) >= flushed.version);
    for (let round = 0; round < 3; round++) {
      for (const base of [origin.url, a.url, b.url]) {
        for (const key of keys) {
          const got = await fetch(url(base, key));
          if (got.status === 200) expect(versionOf(got)).toBeGreaterThanOrEqual(flushed.version);
          else expect(got.status).toBe(404);
        }
      }
    }
    stop = true;
    await Promise.all(writers);

    // The last acknowledged write of each key: visible when at/above the flush, never resurrected below it.
    for (const key of keys) {
      const last = acked.get(key)?.at(-1);
      for (const base of [origin.url, a.url, b.url]) {
        const got = await fetch(url(base, key));
        if (last && last.version >= flushed.version) {
          expect(got.status).toBe(200);
          expect(await got.text()).toBe(last.value);
        } else {
          expect(got.status).toBe(404);
        }
      }
    }
    expect([...acked.values()].flat().some((w) => w.version >= flushed.version)).toBe(true);

    const info = namespaceVersionInfoSchema.parse(await (await fetch(`${a.url}/api/v1/namespaces/${ns}`)).json());
    expect(info.version).toBe(flushed.version);
    expect(info.history[0]).toMatchObject({ version: flushed.version, service_id: 'anonymous' });
  });

  it('flushed entries are reclaimed from Redis in the background; entries written after the flush stay', async () => {
    const other = `${ns}r`;
    for (let i = 0; i < 30; i++) {
      expect(
        (await fetch(`${origin.url}/api/v1/cache/${other}/old${i}?ttl=300`, { method: 'PUT', body: 'x' })).status,
      ).toBe(200);
    }
    expect((await fetch(`${origin.url}/api/v1/namespaces/${other}/flush`, { method: 'POST' })).status).toBe(200);
    expect((await fetch(`${origin.url}/api/v1/cache/${other}/kept?ttl=300`, { method: 'PUT', body: 'y' })).status).toBe(
      200,
    );
    const redis = origin.store.redisClient as Redis;
    const keys = async () => (await redis.keys(`strata:e:${other}:*`)).sort();
    await eventually('old entries unlinked', async () => (await keys()).length === 1, 10_000, 50);
    expect(await keys()).toEqual([`strata:e:${other}:kept`]);
    expect(await (await fetch(`${origin.url}/api/v1/cache/${other}/kept`)).text()).toBe('y');
  });

  it('a flush acknowledged by one replica reaches another replica on the same purge log, and its edge', async () => {
    const key = ownPurgeLogKey();
    const first = await originFor({ REDIS_URL: inject('redisUrl'), PURGE_LOG_KEY: key });
    const second = await originFor({ REDIS_URL: inject('redisUrl'), PURGE_LOG_KEY: key });
    const edge = await edgeFor(second.url, { EDGE_MAX_TTL_SECONDS: '60' });
    const shared = `${ns}s`;
    try {
      expect(
        (await fetch(`${first.url}/api/v1/cache/${shared}/k?ttl=300`, { method: 'PUT', body: 'old' })).status,
      ).toBe(200);
      expect((await fetch(`${edge.url}/api/v1/cache/${shared}/k`)).status).toBe(200);
      const flushed = flushResponseSchema.parse(
        await (await fetch(`${first.url}/api/v1/namespaces/${shared}/flush`, { method: 'POST' })).json(),
      );
      await eventually(
        'second replica learnt the flush',
        () => second.service.namespaces.floor(shared) === flushed.version,
      );
      await eventually(
        'edge of the second replica applied it',
        () => edge.cache.ledger.floor(shared) === flushed.version,
      );
      for (const base of [first.url, second.url, edge.url]) {
        expect((await fetch(`${base}/api/v1/cache/${shared}/k`)).status).toBe(404);
      }
    } finally {
      await edge.close();
      await second.close();
      await first.close();
    }
  });

  it('an origin started after a flush learns the version from Redis and hides older entries', async () => {
    await put(origin.url, 'late', 'before');
    const flushed = flushResponseSchema.parse(
      await (await fetch(`${origin.url}/api/v1/namespaces/${ns}/flush`, { method: 'POST' })).json(),
    );
    const restarted = await originFor({ REDIS_URL: redisUrl });
    try {
      expect(restarted.service.namespaces.floor(ns)).toBe(flushed.version);
      expect((await fetch(url(restarted.url, 'late'))).status).toBe(404);
      expect((await fetch(url(origin.url, 'late'))).status).toBe(404);
    } finally {
      await restarted.close();
    }
  });
});

describe('namespace stats', () => {
  let origin: RunningOrigin;
  beforeAll(async () => {
    origin = await originFor({ MEMORY_STORE_MAX_BYTES: String(1 << 20) });
  });
  afterAll(async () => {
    await origin?.close();
  });

  it('counts a scripted sequence exactly: entries, hits per tier, misses, writes, deletes, ratio', async () => {
    const ns = 'statsns';
    const base = `${origin.url}/api/v1/cache/${ns}`;
    for (const k of ['a', 'b', 'c'])
      expect((await fetch(`${base}/${k}`, { method: 'PUT', body: 'xy' })).status).toBe(200);
    for (const k of ['a', 'a', 'b', 'nope']) await fetch(`${base}/${k}`);
    expect((await fetch(`${base}/c`, { method: 'DELETE' })).status).toBe(200);
    const stats = namespaceStatsSchema.parse(await (await fetch(`${origin.url}/api/v1/namespaces/${ns}/stats`)).json());
    expect(stats).toMatchObject({
      namespace: ns,
      version: 0,
      entries: 2,
      hits: { memory: 3 },
      misses: 1,
      writes: 3,
      deletes: 1,
    });
    expect(stats.hit_ratio).toEqual({ memory: 0.75, all: 0.75 });
    expect(stats.bytes).toBeGreaterThan(0);
    expect(stats.ops_per_second).toBeCloseTo(8 / 10);
    expect(stats.store).toMatchObject({ kind: 'memory', memory_limit_bytes: 1 << 20, keys: 2, evictions: 0 });

    // A flush empties the namespace's count at once.
    expect((await fetch(`${origin.url}/api/v1/namespaces/${ns}/flush`, { method: 'POST' })).status).toBe(200);
    const after = namespaceStatsSchema.parse(await (await fetch(`${origin.url}/api/v1/namespaces/${ns}/stats`)).json());
    expect(after.entries).toBe(0);
    expect(after.version).toBeGreaterThan(0);
    const all = namespacesOverviewSchema.parse(await (await fetch(`${origin.url}/api/v1/namespaces`)).json());
    expect(all.namespaces.map((n) => n.namespace)).toContain(ns);
  });

  it('a bad namespace is CACHE_004', async () => {
    const res = await fetch(`${origin.url}/api/v1/namespaces/Bad%20NS/stats`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CACHE_004');
  });
});

describe('reload', () => {
  let origin: RunningOrigin;
  let file: string;
  const env = (over: Record<string, string>) => ({ ORIGIN_PORT: '0', STRATA_CONFIG_FILE: file, ...over });

  beforeAll(async () => {
    file = join(await mkdtemp(join(tmpdir(), 'strata-reload-')), 'strata.env');
    await writeFile(file, 'CACHE_DEFAULT_TTL=100\nMAX_VALUE_BYTES=1000\n');
    const base = env({});
    const config = parseConfig(originConfigSchema, await envWithConfigFile(base));
    const pino = (await import('pino')).default;
    origin = await startOrigin(config, {
      logger: pino({ level: 'silent' }),
      reloadEnv: () => envWithConfigFile(base),
    });
  });
  afterAll(async () => {
    await origin?.close();
  });

  const put = (body: string) => fetch(`${origin.url}/api/v1/cache/reload/k`, { method: 'PUT', body });
  const reload = () => fetch(`${origin.url}/api/v1/reload`, { method: 'POST' });

  it('a valid change takes effect without dropping a request under load', async () => {
    expect(origin.service.settings.defaultTtlSeconds).toBe(100);
    expect((await put('x'.repeat(1500))).status).toBe(413);
    expect((await put('v')).status).toBe(200);
    let stop = false;
    const statuses: number[] = [];
    const load = Array.from({ length: 4 }, async () => {
      while (!stop) statuses.push((await fetch(`${origin.url}/api/v1/cache/reload/k`)).status, (await put('v')).status);
    });
    await eventually('load running', () => statuses.length > 20);
    await writeFile(file, 'CACHE_DEFAULT_TTL=200\nMAX_VALUE_BYTES=2000\nLOG_LEVEL=fatal\n');
    const res = await reload();
    expect(res.status).toBe(200);
    expect(reloadResponseSchema.parse(await res.json())).toEqual({
      applied: ['CACHE_DEFAULT_TTL', 'MAX_VALUE_BYTES', 'LOG_LEVEL'],
      restart_required: [],
    });
    const countAtReload = statuses.length;
    await eventually('load after reload', () => statuses.length > countAtReload + 20);
    stop = true;
    await Promise.all(load);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect((await put('x'.repeat(1500))).status).toBe(200);
    const read = await fetch(`${origin.url}/api/v1/cache/reload/k`);
    const ttl = (Number(read.headers.get('X-Cache-Expires-At') ?? 0) - Date.now()) / 1000;
    expect(origin.service.settings.defaultTtlSeconds).toBe(200);
    expect(ttl).toBeGreaterThan(150);
  });

  it('an invalid change is refused with one line naming the variable, and the old configuration stays', async () => {
    await writeFile(file, 'CACHE_DEFAULT_TTL=300\nMAX_VALUE_BYTES=-5\n');
    const res = await reload();
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('CACHE_004');
    expect(body.error.message).toMatch(/MAX_VALUE_BYTES/);
    expect(body.error.message).not.toMatch(/\n/);
    expect(origin.service.settings).toMatchObject({ defaultTtlSeconds: 200, maxValueBytes: 2000 });
    expect((await put('x'.repeat(1500))).status).toBe(200);
  });
});
