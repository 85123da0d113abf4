import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerIcdMetrics } from '../../platform/node/icd-metrics.ts';
import { latencyBucketsSeconds, requestMetrics } from '../../platform/node/request-metrics.ts';
import { parseSamples, type Sample } from '../support/prometheus.ts';

/** The same observations through prom-client's own Counter and Histogram: the exposition to match. */
function reference() {
  const registry = new Registry();
  const requests = new Counter({
    name: 'strata_requests_total',
    help: 'Requests by operation, answering tier and result.',
    labelNames: ['operation', 'tier', 'result'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'strata_request_duration_seconds',
    help: 'Request latency by operation and tier.',
    labelNames: ['operation', 'tier'],
    buckets: latencyBucketsSeconds,
    registers: [registry],
  });
  return {
    registry,
    request(operation: string, tier: string, result: string, seconds: number) {
      requests.inc({ operation, tier, result });
      duration.observe({ operation, tier }, seconds);
    },
  };
}

const sorted = (samples: Sample[]) =>
  samples.map((s) => `${s.name}{${Object.entries(s.labels).sort().join(';')}} ${s.value}`).sort();

// Durations on, between and beyond the bucket bounds (a value equal to a bound counts in that bucket).
const observations: [string, string, string, number][] = [
  ['get', 'edge', 'hit', 0.0001],
  ['get', 'edge', 'hit', 0.00011],
  ['get', 'edge', 'miss', 0.003],
  ['get', 'redis', 'hit', 0.05],
  ['get', 'redis', 'stale', 2.5],
  ['get', 'redis', 'hit', 7],
  ['set', 'none', 'ok', 0],
  ['set', 'none', 'error', 0.2],
];

describe('request metrics folded at scrape time', () => {
  it('expose the same samples as prom-client Counter and Histogram observed per request', async () => {
    const registry = new Registry();
    const folded = requestMetrics(registry);
    const ref = reference();
    for (const o of observations) {
      folded.request(...o);
      ref.request(...o);
    }
    const ours = parseSamples(await registry.metrics());
    expect(sorted(ours)).toEqual(sorted(parseSamples(await ref.registry.metrics())));
    expect(ours.some((s) => s.name === 'strata_request_duration_seconds_bucket')).toBe(true);

    // Counts keep accumulating across scrapes; the counter's pending tallies are not added twice.
    folded.request('get', 'edge', 'hit', 0.0004);
    ref.request('get', 'edge', 'hit', 0.0004);
    expect(sorted(parseSamples(await registry.metrics()))).toEqual(sorted(parseSamples(await ref.registry.metrics())));
  });

  it('declare the histogram type and help in the exposition', async () => {
    const registry = new Registry();
    requestMetrics(registry).request('get', 'edge', 'hit', 0.001);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE strata_request_duration_seconds histogram');
    expect(text).toContain('# HELP strata_request_duration_seconds Request latency by operation and tier.');
  });

  it('feed the ICD latency histogram computed from them', async () => {
    const registry = new Registry();
    const { request } = requestMetrics(registry);
    registerIcdMetrics(registry, {
      service: 'strata-edge',
      node: () => 'edge-1',
      zone: 'eu-1',
      status: () => 1,
      memory: () => ({}),
      replicationLag: () => undefined,
      hitRateWindowMs: 60_000,
      now: () => 1_000_000,
    });
    request('get', 'edge', 'hit', 0.0004);
    request('get', 'redis', 'hit', 0.002);
    const samples = parseSamples(await registry.metrics());
    const latency = (le: string) =>
      samples.find((s) => s.name === 'cache_latency_bucket' && s.labels.operation === 'get' && s.labels.le === le)
        ?.value;
    expect(latency('0.0005')).toBe(1);
    expect(latency('0.0025')).toBe(2);
  });

  it('start from zero after the registry is reset', async () => {
    const registry = new Registry();
    const { request } = requestMetrics(registry);
    request('get', 'edge', 'hit', 0.001);
    registry.resetMetrics();
    request('get', 'edge', 'hit', 0.001);
    const count = parseSamples(await registry.metrics()).find(
      (s) => s.name === 'strata_request_duration_seconds_count',
    );
    expect(count?.value).toBe(1);
    const total = parseSamples(await registry.metrics()).find((s) => s.name === 'strata_requests_total');
    expect(total?.value).toBe(1);
  });
});
