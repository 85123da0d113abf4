import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerIcdMetrics } from '../../platform/node/icd-metrics.ts';
import { parseSamples, value } from '../support/prometheus.ts';

function setup(now: () => number) {
  const registry = new Registry();
  const requests = new Counter({
    name: 'strata_requests_total',
    help: 'h',
    labelNames: ['operation', 'tier', 'result'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'strata_request_duration_seconds',
    help: 'h',
    labelNames: ['operation', 'tier'],
    buckets: [0.001, 0.01, 0.1],
    registers: [registry],
  });
  const request = (operation: string, tier: string, result: string, seconds: number) => {
    requests.inc({ operation, tier, result });
    duration.observe({ operation, tier }, seconds);
  };
  let lag: { target: string; seconds: number } | undefined;
  registerIcdMetrics(registry, {
    service: 'strata-edge',
    node: () => 'edge-1',
    zone: 'eu-1',
    status: () => 1,
    memory: () => ({ edge_tier: 4096 }),
    replicationLag: () => lag,
    hitRateWindowMs: 60_000,
    now,
  });
  return {
    request,
    setLag: (l: typeof lag) => {
      lag = l;
    },
    scrape: async () => parseSamples(await registry.metrics()),
  };
}

describe('ICD §6.1 metrics', () => {
  it('are derived at scrape time under the ICD names and labels', async () => {
    let t = 1_000_000;
    const s = setup(() => t);
    s.request('get', 'edge', 'hit', 0.0005);
    s.request('get', 'edge', 'hit', 0.002);
    s.request('get', 'redis', 'stale', 0.05);
    s.request('get', 'none', 'miss', 0.05);
    s.request('set', 'edge', 'ok', 0.02);
    s.setLag({ target: 'origin', seconds: 0.004 });
    const samples = await s.scrape();
    expect(value(samples, 'cache_hit_rate', { service: 'strata-edge', operation: 'get' })).toBe(0.75);
    expect(samples.some((x) => x.name === 'cache_hit_rate' && x.labels.operation === 'set')).toBe(false);
    // The latency histogram sums the tiers of strata_request_duration_seconds.
    expect(value(samples, 'cache_latency_count', { service: 'strata-edge', operation: 'get' })).toBe(4);
    expect(value(samples, 'cache_latency_bucket', { operation: 'get', le: '0.001' })).toBe(1);
    expect(value(samples, 'cache_latency_bucket', { operation: 'get', le: '0.01' })).toBe(2);
    expect(value(samples, 'cache_latency_bucket', { operation: 'get', le: '+Inf' })).toBe(4);
    expect(value(samples, 'cache_latency_sum', { operation: 'get' })).toBeCloseTo(0.1025);
    expect(value(samples, 'cache_latency_count', { operation: 'set' })).toBe(1);
    expect(value(samples, 'cache_memory_usage', { node: 'edge-1', type: 'edge_tier' })).toBe(4096);
    expect(value(samples, 'cache_memory_usage', { node: 'edge-1', type: 'rss' })).toBeGreaterThan(0);
    expect(value(samples, 'cache_node_status', { node: 'edge-1', zone: 'eu-1' })).toBe(1);
    expect(value(samples, 'cache_replication_lag', { node: 'edge-1', target: 'origin' })).toBe(0.004);

    // Later scrapes answer the change since the oldest scrape within the window.
    t += 30_000;
    s.request('get', 'none', 'miss', 0.01);
    expect(value(await s.scrape(), 'cache_hit_rate', { operation: 'get' })).toBe(0);
    t += 20_000;
    s.request('get', 'edge', 'hit', 0.01);
    expect(value(await s.scrape(), 'cache_hit_rate', { operation: 'get' })).toBe(0.5);
    t += 60_000;
    // Nothing read since the last scrape: no rate.
    expect((await s.scrape()).some((x) => x.name === 'cache_hit_rate')).toBe(false);
  });
});
