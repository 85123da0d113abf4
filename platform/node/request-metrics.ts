import { Counter, Histogram, type Registry } from 'prom-client';

/** Latency buckets, seconds: 0.1 ms … 2.5 s. */
export const latencyBucketsSeconds = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5,
];

/**
 * `strata_requests_total{operation,tier,result}` and
 * `strata_request_duration_seconds{operation,tier}` on `registry` — the
 * request metrics every Node process of Strata (origin and Node edge) exports
 * under the same names.
 *
 * prom-client validates and hashes the label set on every `inc`/`observe`,
 * about a microsecond each. Request counts are therefore tallied in a plain
 * map on the hot path and added to the counter in its `collect` hook, which
 * prom-client runs before every read of the metric (a scrape, or the ICD
 * metrics computed from it); the histogram is observed per request.
 *
 * @returns `request(operation, tier, result, seconds)` for the hot path.
 */
export function requestMetrics(registry: Registry): {
  request(operation: string, tier: string, result: string, seconds: number): void;
} {
  const pending = new Map<string, { labels: { operation: string; tier: string; result: string }; n: number }>();
  new Counter({
    name: 'strata_requests_total',
    help: 'Requests by operation, answering tier and result.',
    labelNames: ['operation', 'tier', 'result'] as const,
    registers: [registry],
    collect() {
      for (const tally of pending.values()) {
        if (tally.n === 0) continue;
        this.inc(tally.labels, tally.n);
        tally.n = 0;
      }
    },
  });
  const duration = new Histogram({
    name: 'strata_request_duration_seconds',
    help: 'Request latency by operation and tier.',
    labelNames: ['operation', 'tier'] as const,
    buckets: latencyBucketsSeconds,
    registers: [registry],
  });
  const histograms = new Map<string, ReturnType<typeof duration.labels>>();
  return {
    request(operation, tier, result, seconds) {
      const id = `${operation}\u0000${tier}\u0000${result}`;
      const tally = pending.get(id);
      if (tally) tally.n++;
      else pending.set(id, { labels: { operation, tier, result }, n: 1 });
      const hid = `${operation}\u0000${tier}`;
      let child = histograms.get(hid);
      if (child === undefined) {
        child = duration.labels(operation, tier);
        histograms.set(hid, child);
      }
      child.observe(seconds);
    },
  };
}
