import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { withIcdMetrics } from '../../origin/icd-metrics.ts';
import type { RequestMetrics } from '../../shared/metrics.ts';
import { parseSamples, value } from '../support/prometheus.ts';

function setup(now: () => number) {
  const registry = new Registry();
  const seen: string[] = [];
  const base: RequestMetrics = {
    request: (operation, tier, result) => void seen.push(`${operation}/${tier}/${result}`),
    render: async () => registry.metrics(),
    contentType: registry.contentType,
  };
  let lag: { target: string; seconds: number } | undefined;
  const metrics = withIcdMetrics(base, registry, {
    service: 'strata-edge',
    node: () => 'edge-1',
    zone: 'eu-1',
    status: () => 1,
    memory: () => ({ edge_tier: 4096 }),
    replicationLag: () => lag,
    hitRateWindowMs: 60_000,
    latencyBuckets: [0.001, 0.01, 0.1],
    now,
  });
  return {
    metrics,
    seen,
    setLag: (l: typeof lag) => {
      lag = l;
    },
    scrape: async () => parseSamples(await registry.metrics()),
  };
}

describe('ICD §6.1 metrics', () => {
  it('are exported under the ICD names and labels, next to the wrapped metrics', async () => {
    let t = 1_000_000;
    const s = setup(() => t);
    s.metrics.request('get', 'edge', 'hit', 0.001);
    s.metrics.request('get', 'edge', 'hit', 0.002);
    s.metrics.request('get', 'redis', 'stale', 0.01);
    s.metrics.request('get', 'none', 'miss', 0.01);
    s.metrics.request('set', 'edge', 'ok', 0.02);
    s.setLag({ target: 'http://origin:8080', seconds: 0.004 });
    expect(s.seen).toHaveLength(5);
    const samples = await s.scrape();
    expect(value(samples, 'cache_hit_rate', { service: 'strata-edge', operation: 'get' })).toBe(0.75);
    expect(samples.some((x) => x.name === 'cache_hit_rate' && x.labels.operation === 'set')).toBe(false);
    expect(value(samples, 'cache_latency_count', { service: 'strata-edge', operation: 'get' })).toBe(4);
    expect(value(samples, 'cache_latency_count', { service: 'strata-edge', operation: 'set' })).toBe(1);
    expect(value(samples, 'cache_memory_usage', { node: 'edge-1', type: 'edge_tier' })).toBe(4096);
    expect(value(samples, 'cache_memory_usage', { node: 'edge-1', type: 'rss' })).toBeGreaterThan(0);
    expect(value(samples, 'cache_node_status', { node: 'edge-1', zone: 'eu-1' })).toBe(1);
    expect(value(samples, 'cache_replication_lag', { node: 'edge-1', target: 'http://origin:8080' })).toBe(0.004);

    // The hit rate covers the last minute only: older reads slide out.
    t += 30_000;
    s.metrics.request('get', 'none', 'miss', 0.01);
    expect(value(await s.scrape(), 'cache_hit_rate', { operation: 'get' })).toBe(3 / 5);
    t += 45_000;
    expect(value(await s.scrape(), 'cache_hit_rate', { operation: 'get' })).toBe(0);
    t += 60_000;
    expect((await s.scrape()).some((x) => x.name === 'cache_hit_rate')).toBe(false);
  });
});
