import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { StatsCollector } from '../../origin/dashboard/stats-collector.ts';
import { healthEvent } from '../../origin/health/health-events.ts';
import { healthEventSchema } from '../../shared/health-event.ts';
import { counterIncrease, histogramQuantile, snapshotFromMetrics, statsPoint } from '../../shared/stats.ts';

describe('dashboard and health numbers', () => {
  it('quantiles interpolate inside the bucket like histogram_quantile, and are null without observations', () => {
    // 10 observations: 4 ≤ 0.1 s, 9 ≤ 0.2 s, 10 ≤ +Inf.
    const h = { 'x:0.1': 4, 'x:0.2': 9, 'x:+Inf': 10 };
    expect(histogramQuantile(h, 'x:', 0.5)).toBeCloseTo(0.1 + (0.1 * (5 - 4)) / (9 - 4));
    expect(histogramQuantile(h, 'x:', 0.2)).toBeCloseTo(0.05);
    // A quantile in the +Inf bucket answers the highest finite bound.
    expect(histogramQuantile(h, 'x:', 0.99)).toBe(0.2);
    expect(histogramQuantile({ 'x:0.1': 0, 'x:+Inf': 0 }, 'x:', 0.5)).toBeNull();
  });

  it('counter increases treat a lower value as a restart, as rate() does', () => {
    expect(counterIncrease({ a: 2, b: 5 }, { a: 3, b: 5, c: 1 })).toEqual({ a: 1, b: 0, c: 1 });
    expect(counterIncrease({ a: 10 }, { a: 3 })).toEqual({ a: 3 });
    expect(counterIncrease(undefined, { a: 3 })).toEqual({ a: 3 });
  });

  it('a snapshot reads the request counter, the get latency histogram summed over tiers, and the gauges', () => {
    const snapshot = snapshotFromMetrics([
      {
        name: 'strata_requests_total',
        values: [{ value: 3, labels: { operation: 'get', tier: 'redis', result: 'hit' } }],
      },
      {
        name: 'strata_request_duration_seconds',
        values: [
          {
            value: 1,
            metricName: 'strata_request_duration_seconds_bucket',
            labels: { operation: 'get', tier: 'redis', le: 0.001 },
          },
          {
            value: 2,
            metricName: 'strata_request_duration_seconds_bucket',
            labels: { operation: 'get', tier: 'edge', le: 0.001 },
          },
          {
            value: 9,
            metricName: 'strata_request_duration_seconds_bucket',
            labels: { operation: 'set', tier: 'redis', le: 0.001 },
          },
          {
            value: 3,
            metricName: 'strata_request_duration_seconds_count',
            labels: { operation: 'get', tier: 'redis' },
          },
        ],
      },
      { name: 'strata_breaker_state', values: [{ value: 1, labels: { state: 'open' } }] },
      { name: 'strata_connected_edges', values: [{ value: 2, labels: {} }] },
    ]);
    expect(snapshot).toEqual({
      counters: { 'requests:get:redis:hit': 3, 'get_le:0.001': 3, get_count: 3 },
      gauges: { 'breaker:open': 1, connected_edges: 2 },
    });
  });

  it('a point gives each tier its share of the gets of its layer, rates per second and the breaker state', () => {
    const origin = {
      'requests:get:redis:hit': 6,
      'requests:get:origin-local:stale': 2,
      'requests:get:none:miss': 2,
      'requests:set:redis:ok': 10,
    };
    const edges = { 'requests:get:edge:hit': 30, 'requests:get:redis:miss': 10 };
    const p = statsPoint(1000, 2, origin, edges, { 'breaker:half-open': 1, connected_edges: 3 });
    expect(p.hitRatio).toEqual({ edge: 0.75, redis: 0.6, memory: 0, 'origin-local': 0.2 });
    expect(p.originRps).toBe(10);
    expect(p.edgeRps).toBe(20);
    expect(p.breaker).toBe(1);
    expect(p.connectedEdges).toBe(3);
    expect(p.edgeP50).toBeNull();
  });

  it('a health event follows ICD §3.1.2: hit rate and ops rate of the interval, degraded while the breaker is not closed', () => {
    const increase = { 'requests:get:redis:hit': 3, 'requests:get:none:miss': 1, 'requests:set:redis:ok': 6 };
    const event = healthEvent({
      increase,
      seconds: 2,
      breaker: 'closed',
      memoryUsage: 0.25,
      serviceId: 'origin-a',
      nowMs: Date.UTC(2026, 0, 1),
    });
    expect(healthEventSchema.parse(event)).toEqual({
      event: 'cache.health.status',
      data: {
        status: 'healthy',
        metrics: { hit_rate: 0.75, memory_usage: 0.25, ops_rate: 5 },
        service_id: 'origin-a',
        timestamp: '2026-01-01T00:00:00.000Z',
      },
    });
    const degraded = healthEvent({
      increase: {},
      seconds: 1,
      breaker: 'open',
      memoryUsage: 0,
      serviceId: 'x',
      nowMs: 0,
    });
    expect(degraded.data.status).toBe('degraded');
    expect(degraded.data.metrics).toMatchObject({ hit_rate: 0, ops_rate: 0 });
    expect(
      healthEvent({ increase: {}, seconds: 1, breaker: undefined, memoryUsage: 0, serviceId: 'x', nowMs: 0 }).data
        .status,
    ).toBe('healthy');
  });

  it("the collector's points add edge increases since each edge's previous report; a first report or a restart is no spike", async () => {
    let now = 0;
    const collector = new StatsCollector({
      registry: new Registry(),
      sampleMs: 1000,
      keep: 3,
      edgeExpiryMs: 10_000,
      now: () => now,
    });
    const report = (id: string, hits: number) =>
      collector.report({ edge_id: id, snapshot: { counters: { 'requests:get:edge:hit': hits }, gauges: {} } });
    await collector.sample(); // baseline
    report('a', 1000); // first report of a long-lived edge: baseline only
    now = 1000;
    expect((await collector.sample())?.edgeRps).toBe(0);
    report('a', 1010);
    report('a', 3); // restarted: its 3 new requests count, not −1007
    report('b', 5);
    report('b', 7);
    now = 2000;
    expect((await collector.sample())?.edgeRps).toBe(10 + 3 + 2);
    now = 3000;
    await collector.sample();
    now = 4000;
    await collector.sample();
    expect(collector.points.map((p) => p.t)).toEqual([2000, 3000, 4000]);
    now = 20_000;
    await collector.sample();
    expect(collector.edges).toEqual([]);
  });
});
