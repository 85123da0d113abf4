import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningRedis, startRedis } from '../../scripts/services/redis.ts';
import { scrape, series, value } from '../support/prometheus.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * A scripted sequence of hits, misses, purges and a breaker trip against a
 * real Redis, then the exact counter values it implies at the edge and the
 * origin (issue 7: "hit/miss counters accurate, local-tier hits
 * distinguished from Redis hits"). Every series of `strata_requests_total`
 * is compared, so an extra or missing label combination fails too.
 */
describe('metrics after a scripted sequence', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('count exactly the hits, misses, purges and breaker trip that happened, per tier', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-metrics-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const redis: RunningRedis = await startRedis({ dir });
    let redisUp = true;
    cleanups.push(async () => {
      if (redisUp) await redis.stop();
    });
    const origin = await originFor({
      REDIS_URL: redis.url,
      // Trip on few calls and stay open for the rest of the test: no probe, no background recovery.
      BREAKER_MIN_REQUESTS: '2',
      BREAKER_THRESHOLD: '0.5',
      BREAKER_WINDOW_SECONDS: '60',
      BREAKER_HALF_OPEN_AFTER_MS: '600000',
      BREAKER_RECOVERY_INTERVAL_MS: '0',
      REDIS_READ_ATTEMPTS: '1',
      REDIS_CALL_TIMEOUT_MS: '200',
    });
    cleanups.push(() => origin.close());
    const edge = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '60' });
    cleanups.push(() => edge.close());

    const o = origin.url;
    const e = edge.url;
    const get = async (base: string, key: string) => {
      const res = await fetch(`${base}/api/v1/cache/m/${key}`);
      await res.arrayBuffer();
      return { status: res.status, cache: res.headers.get('X-Cache'), tier: res.headers.get('X-Cache-Tier') };
    };
    const put = async (base: string, key: string) => {
      const res = await fetch(`${base}/api/v1/cache/m/${key}?ttl=600`, { method: 'PUT', body: `v-${key}` });
      await res.arrayBuffer();
      return { status: res.status, degraded: res.headers.get('X-Cache-Degraded') };
    };
    const edgePurges = async () => value(await scrape(e), 'strata_edge_purge_messages_total', { type: 'purge' });

    // 1. Two writes at the origin; each reaches the edge as one purge message.
    expect((await put(o, 'a')).status).toBe(200);
    expect((await put(o, 'b')).status).toBe(200);
    await eventually('2 purges applied at the edge', async () => (await edgePurges()) === 2);

    // 2. One edge miss filled from Redis, then two edge hits.
    expect(await get(e, 'a')).toEqual({ status: 200, cache: 'MISS', tier: 'redis' });
    expect(await get(e, 'a')).toEqual({ status: 200, cache: 'HIT', tier: 'edge' });
    expect(await get(e, 'a')).toEqual({ status: 200, cache: 'HIT', tier: 'edge' });

    // 3. A key nobody wrote: a miss at both.
    expect((await get(e, 'nothing')).status).toBe(404);

    // 4. A delete at the origin purges the edge's copy; the next edge read misses at both.
    expect((await fetch(`${o}/api/v1/cache/m/a`, { method: 'DELETE' })).status).toBe(200);
    await eventually('the delete applied at the edge', async () => (await edgePurges()) === 3);
    expect((await get(e, 'a')).status).toBe(404);

    // 5. Redis goes away. Reads of `b` (whose write left a clean copy in the local tier) are served
    //    STALE by the origin's local tier until the breaker opens.
    expect(
      value(await scrape(o), 'strata_redis_node_up', { role: 'standalone', node: `127.0.0.1:${redis.port}` }),
    ).toBe(1);
    await redis.stop();
    redisUp = false;
    let staleReads = 0;
    await eventually(
      'the breaker to open',
      async () => {
        expect(await get(o, 'b')).toEqual({ status: 200, cache: 'STALE', tier: 'origin-local' });
        staleReads++;
        return value(await scrape(o), 'strata_breaker_state', { state: 'open' }) === 1;
      },
      20_000,
      20,
    );
    // One more through the edge, and a write accepted by the local tier alone, read back as a local HIT.
    expect(await get(e, 'b')).toEqual({ status: 200, cache: 'STALE', tier: 'origin-local' });
    expect(await put(o, 'c')).toEqual({ status: 200, degraded: '1' });
    expect(await get(o, 'c')).toEqual({ status: 200, cache: 'HIT', tier: 'origin-local' });

    // set a, set b, delete a, and the locally accepted set of c: the purge bus purges edges for each.
    await eventually('4 purges applied at the edge', async () => (await edgePurges()) === 4);

    const originSamples = await scrape(o);
    const labels = ['operation', 'tier', 'result'];
    expect(series(originSamples, 'strata_requests_total', labels)).toEqual({
      'operation=set,tier=redis,result=ok': 2,
      'operation=get,tier=redis,result=hit': 1,
      'operation=get,tier=none,result=miss': 2,
      'operation=delete,tier=redis,result=ok': 1,
      'operation=get,tier=origin-local,result=stale': staleReads + 1,
      'operation=set,tier=origin-local,result=ok': 1,
      'operation=get,tier=origin-local,result=hit': 1,
    });
    // Histogram counts agree with the counters, per operation and tier.
    expect(value(originSamples, 'strata_request_duration_seconds_count', { operation: 'get', tier: 'redis' })).toBe(1);
    expect(
      value(originSamples, 'strata_request_duration_seconds_count', { operation: 'get', tier: 'origin-local' }),
    ).toBe(staleReads + 2);
    expect(series(originSamples, 'strata_purges_total', ['action'])).toEqual({
      'action=update': 3,
      'action=delete': 1,
    });
    expect(series(originSamples, 'strata_breaker_transitions_total', ['to'])).toEqual({ 'to=open': 1 });
    expect(value(originSamples, 'strata_breaker_state', { state: 'open' })).toBe(1);
    expect(value(originSamples, 'strata_breaker_state', { state: 'closed' })).toBe(0);
    expect(series(originSamples, 'strata_fallback_reads_total', ['result'])).toEqual({
      'result=hit': staleReads + 2,
    });
    expect(value(originSamples, 'strata_dirty_entries')).toBe(1);
    expect(value(originSamples, 'strata_local_tier_entries', { kind: 'dirty' })).toBe(1);
    const store = origin.store.resilience;
    if (!store) throw new Error('expected the Redis store behind the breaker');
    expect(value(originSamples, 'strata_local_tier_entries', { kind: 'clean' })).toBe(store.local.cleanCount);
    expect(store.local.cleanCount).toBeGreaterThanOrEqual(1);
    expect(value(originSamples, 'strata_local_tier_dirty_bytes')).toBe(store.local.dirtyBytes);
    expect(store.local.dirtyBytes).toBeGreaterThan(0);
    expect(value(originSamples, 'strata_connected_edges')).toBe(1);
    expect(value(originSamples, 'strata_redis_node_up', { role: 'standalone' })).toBe(0);
    // The ICD §6.1 names agree: latency count per operation (all tiers), the node degraded.
    expect(value(originSamples, 'cache_latency_count', { operation: 'get' })).toBe(1 + 2 + staleReads + 1 + 1);
    expect(value(originSamples, 'cache_node_status')).toBe(0);

    const edgeSamples = await scrape(e);
    expect(series(edgeSamples, 'strata_requests_total', labels)).toEqual({
      'operation=get,tier=redis,result=miss': 1,
      'operation=get,tier=edge,result=hit': 2,
      'operation=get,tier=none,result=miss': 2,
      'operation=get,tier=origin-local,result=stale': 1,
    });
    // Coalesced origin loads: the fill of `a`, the two 404s and the stale `b`.
    expect(value(edgeSamples, 'strata_edge_origin_loads_total')).toBe(4);
    expect(value(edgeSamples, 'strata_edge_purge_lag_seconds_count')).toBe(4);
    // Only the delete of `a` found a copy at the edge (b and c were never read there).
    expect(value(edgeSamples, 'strata_edge_purged_entries_total')).toBe(1);
    expect(value(edgeSamples, 'strata_edge_purge_stream_reconnects_total')).toBe(0);
    expect(value(edgeSamples, 'strata_edge_tier_evictions_total')).toBe(0);
    // Edge reads: 2 hits and 1 stale among 6 (the first scrape of the edge saw no reads yet, so the window holds all).
    expect(value(edgeSamples, 'cache_hit_rate', { service: 'strata-edge', operation: 'get' })).toBe(0.5);
    expect(value(edgeSamples, 'cache_node_status')).toBe(1);
    expect(value(edgeSamples, 'cache_replication_lag', { target: 'origin' })).toBeGreaterThanOrEqual(0);
    expect(edgeSamples.some((x) => x.name === 'cache_replication_lag')).toBe(true);
  });
});
