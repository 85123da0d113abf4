import { describe, expect, it } from 'vitest';
import { memoryTier } from '../../edge/core/memory-tier.ts';
import { textEdgeMetrics } from '../../edge/text-metrics.ts';
import { parseSamples, series } from '../support/prometheus.ts';

/**
 * The Deno edge's Prometheus text metrics (`edge/text-metrics.ts`): request
 * counts and summed seconds per operation, tier and result, one series per
 * combination however often it is observed, label values escaped.
 */
describe('text edge metrics', () => {
  it('counts and sums requests per label combination', async () => {
    const metrics = textEdgeMetrics(memoryTier({ maxBytes: 1024 }), {
      subscribed: () => true,
      leaseAgeMs: () => null,
    });
    metrics.request('get', 'edge', 'hit', 0.25);
    metrics.request('get', 'edge', 'hit', 0.5);
    metrics.request('get', 'origin', 'miss', 0.125);
    metrics.request('put', 'origin', 'ok', 1);
    metrics.request('get', 'edge', 'hit', 0.25);
    // A value that needs escaping in the exposition format.
    metrics.request('get', 'edge', 'odd"one\\', 2);
    const text = (await metrics.render()) ?? '';
    const samples = parseSamples(text);
    const labels = ['operation', 'tier', 'result'];
    expect(series(samples, 'strata_edge_requests_total', labels)).toEqual({
      'operation=get,tier=edge,result=hit': 3,
      'operation=get,tier=origin,result=miss': 1,
      'operation=put,tier=origin,result=ok': 1,
      'operation=get,tier=edge,result=odd\\"one\\\\': 1,
    });
    expect(series(samples, 'strata_edge_request_seconds_sum', labels)).toEqual({
      'operation=get,tier=edge,result=hit': 1,
      'operation=get,tier=origin,result=miss': 0.125,
      'operation=put,tier=origin,result=ok': 1,
      'operation=get,tier=edge,result=odd\\"one\\\\': 2,
    });
    expect(text.split('\n').filter((l) => l.startsWith('strata_edge_requests_total{')).length).toBe(4);
  });
});
