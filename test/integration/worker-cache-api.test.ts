import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheApiEntryUrl, defaultCacheApiBaseUrl } from '../../edge/adapters/workers/cache-api-tier.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { buildWorker } from '../../scripts/build-worker.ts';
import { originFor } from '../support/stack.ts';

const ns = 'wcache';

/** A Worker that answers what `caches.default` holds under `?url=` (200 with the body, or 404): the test's view of the Cache API. */
const probeScript = `export default {
  async fetch(request) {
    const held = await caches.default.match(new URL(request.url).searchParams.get('url'));
    return held ? new Response(await held.arrayBuffer()) : new Response('absent', { status: 404 });
  },
};`;

/**
 * The Workers edge's second tier in workerd (Miniflare), against a running
 * origin: three Workers edges (three isolates, `a`, `b`, `c`) share the
 * colo's Cache API (`caches.default`). One isolate's fill serves another;
 * a value purged at the origin is not served from the Cache API afterwards,
 * neither by an isolate that was following the purge log (it refuses the
 * copy by the purge's version floor, though the copy is still in the cache)
 * nor by an isolate started after the purge (it refuses copies filled before
 * its view of the purge log began). Every read polls the purge log first
 * (`EDGE_PURGE_POLL_MS=1`), so "afterwards" is the next read.
 */
describe('Workers edge: the Cache API as a second tier shared by isolates (workerd)', () => {
  let origin: RunningOrigin;
  let mf: Miniflare;

  const edge = async (isolate: 'a' | 'b' | 'c', key: string) => {
    const res = await mf.dispatchFetch(`http://${isolate}.edge.test/api/v1/cache/${ns}/${key}`);
    return {
      status: res.status,
      cache: res.headers.get('X-Cache'),
      tier: res.headers.get('X-Cache-Tier'),
      body: await res.text(),
    };
  };
  /** Whether the Cache API still holds a copy of `key` (whatever any isolate would make of it). */
  const inCacheApi = async (key: string) => {
    const res = await mf.dispatchFetch(
      `http://probe.test/?url=${encodeURIComponent(cacheApiEntryUrl(defaultCacheApiBaseUrl, ns, key))}`,
    );
    await res.arrayBuffer();
    return res.status === 200;
  };
  const put = async (key: string, value: string, query = '') => {
    const res = await fetch(`${origin.url}/api/v1/cache/${ns}/${key}?ttl=600${query}`, { method: 'PUT', body: value });
    expect(res.status).toBe(200);
  };

  beforeAll(async () => {
    origin = await originFor();
    const scriptPath = await buildWorker();
    const bindings = {
      ORIGIN_URL: origin.url,
      EDGE_CACHE_API: 'true',
      EDGE_PURGE_POLL_MS: '1',
      EDGE_MAX_TTL_SECONDS: '300',
    };
    // Each Worker answers its own host name.
    const edgeWorker = (name: string) => ({
      name,
      routes: [`${name}.edge.test/*`],
      modules: true,
      scriptPath,
      compatibilityDate: '2025-09-01',
      bindings,
    });
    mf = new Miniflare({
      workers: [
        edgeWorker('a'),
        edgeWorker('b'),
        edgeWorker('c'),
        {
          name: 'probe',
          routes: ['probe.test/*'],
          modules: true,
          script: probeScript,
          compatibilityDate: '2025-09-01',
        },
      ],
    });
    await mf.ready;
  }, 60_000);
  afterAll(async () => {
    await mf?.dispose();
    await origin?.close();
  });

  it('one isolate fills the Cache API, another serves from it; after a purge at the origin neither it nor a fresh isolate serves the copy; lookups are counted', async () => {
    // b's view of the purge log begins now (its first poll); it trusts only fills made after that.
    expect((await mf.dispatchFetch('http://b.edge.test/ready')).status).toBe(200);
    await put('tagged', 'old', '&tags=t1');
    await put('updated', 'old');

    // Isolate a misses and fills both tiers.
    expect(await edge('a', 'tagged')).toMatchObject({ status: 200, cache: 'MISS', body: 'old' });
    expect(await edge('a', 'updated')).toMatchObject({ status: 200, cache: 'MISS', body: 'old' });
    expect(await inCacheApi('tagged')).toBe(true);

    // Isolate b has never read the key: its memory misses, the Cache API serves.
    expect(await edge('b', 'tagged')).toMatchObject({ status: 200, cache: 'HIT', tier: 'edge-cache-api', body: 'old' });

    // The origin purges by tag (no isolate can delete by tag) and replaces the other value.
    const purge = await fetch(`${origin.url}/api/v1/purge`, {
      method: 'POST',
      body: JSON.stringify({ namespace: ns, tags: ['t1'] }),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(purge.status).toBe(200);
    await put('updated', 'new');
    // The old copy is still in the Cache API: refusing it is up to each isolate.
    expect(await inCacheApi('tagged')).toBe(true);

    // b followed the log: the tag purge's floor refuses the copy, the origin answers.
    expect(await edge('b', 'tagged')).toMatchObject({ status: 404, cache: 'MISS' });
    expect(await edge('b', 'updated')).toMatchObject({ status: 200, cache: 'MISS', body: 'new' });
    expect(await inCacheApi('tagged')).toBe(true);

    // c starts now: it cannot know what it missed, so copies filled before its view began are refused.
    expect(await edge('c', 'tagged')).toMatchObject({ status: 404, cache: 'MISS' });
    expect(await edge('c', 'updated')).toMatchObject({ status: 200, cache: 'MISS', body: 'new' });

    // A fill made after c's view began is trusted by c.
    await put('later', 'fresh');
    expect(await edge('a', 'later')).toMatchObject({ status: 200, cache: 'MISS', body: 'fresh' });
    expect(await edge('c', 'later')).toMatchObject({
      status: 200,
      cache: 'HIT',
      tier: 'edge-cache-api',
      body: 'fresh',
    });
    // c's metrics: tagged and updated refused (misses), later served (a hit).
    const text = await (await mf.dispatchFetch('http://c.edge.test/metrics')).text();
    const count = (outcome: string) =>
      Number(
        new RegExp(`^strata_edge_shared_tier_lookups_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1],
      );
    expect(count('miss')).toBe(2);
    expect(count('hit')).toBe(1);
  });
});
