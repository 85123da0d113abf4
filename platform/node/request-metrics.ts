import type { Histogram, MetricObjectWithValues, MetricValueWithName, Registry } from 'prom-client';
import { Counter } from 'prom-client';

/** Latency buckets, seconds: 0.1 ms … 2.5 s. */
export const latencyBucketsSeconds = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5,
];

/** The tallies of one (operation, tier): histogram buckets, and request counts by result. */
interface Series {
  readonly operation: string;
  readonly tier: string;
  /** Observations per bucket, not cumulative; the last slot is `+Inf`. */
  readonly buckets: number[];
  sum: number;
  count: number;
  /** Requests by result not yet added to `strata_requests_total`. */
  readonly pending: Map<string, number>;
}

/**
 * A Prometheus histogram whose buckets are plain per-series arrays, folded
 * into the exposition only when the registry reads it (a scrape, or the ICD
 * metrics computed from it). The text it produces is the one prom-client's
 * `Histogram` would produce for the same observations (`_bucket` with
 * cumulative counts and `le`, `+Inf`, `_sum`, `_count`).
 */
class FoldedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  readonly #series: () => Iterable<Series>;
  readonly #clear: () => void;

  constructor(
    name: string,
    help: string,
    bounds: readonly number[],
    series: () => Iterable<Series>,
    clear: () => void,
  ) {
    this.name = name;
    this.help = help;
    this.#bounds = bounds;
    this.#series = series;
    this.#clear = clear;
  }

  /** Called by the registry's exposition and `getMetricsAsJSON`. */
  async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const values: MetricValueWithName<string>[] = [];
    for (const s of this.#series()) {
      if (s.count === 0) continue;
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += s.buckets[i]!;
        values.push({
          metricName: `${this.name}_bucket`,
          labels: { le: this.#bounds[i]!, operation: s.operation, tier: s.tier },
          value: cumulative,
        });
      }
      values.push({
        metricName: `${this.name}_bucket`,
        labels: { le: '+Inf', operation: s.operation, tier: s.tier },
        value: s.count,
      });
      values.push({ metricName: `${this.name}_sum`, labels: { operation: s.operation, tier: s.tier }, value: s.sum });
      values.push({
        metricName: `${this.name}_count`,
        labels: { operation: s.operation, tier: s.tier },
        value: s.count,
      });
    }
    const type = 'histogram' as unknown as MetricObjectWithValues<MetricValueWithName<string>>['type'];
    return { name: this.name, help: this.help, type, aggregator: 'sum', values, collect: () => {} };
  }

  /** Called by `registry.resetMetrics()`. */
  reset(): void {
    this.#clear();
  }
}

/**
 * `strata_requests_total{operation,tier,result}` and
 * `strata_request_duration_seconds{operation,tier}` on `registry` — the
 * request metrics every Node process of Strata (origin and Node edge) exports
 * under the same names.
 *
 * prom-client validates and hashes the label set on every `inc`/`observe`,
 * about a microsecond each. The hot path therefore only finds its
 * (operation, tier) series in two plain maps and bumps numbers: the request
 * count by result and the duration's bucket. The counter takes the pending
 * counts in its `collect` hook, which prom-client runs before every read of
 * the metric; the duration histogram is built from the bucket arrays when it
 * is read (the Prometheus histogram format:
 * https://prometheus.io/docs/concepts/metric_types/#histogram).
 *
 * @returns `request(operation, tier, result, seconds)` for the hot path.
 */
export function requestMetrics(registry: Registry): {
  request(operation: string, tier: string, result: string, seconds: number): void;
} {
  const byOperation = new Map<string, Map<string, Series>>();
  const allSeries = function* () {
    for (const tiers of byOperation.values()) yield* tiers.values();
  };
  new Counter({
    name: 'strata_requests_total',
    help: 'Requests by operation, answering tier and result.',
    labelNames: ['operation', 'tier', 'result'] as const,
    registers: [registry],
    collect() {
      for (const s of allSeries()) {
        for (const [result, n] of s.pending) {
          if (n === 0) continue;
          this.inc({ operation: s.operation, tier: s.tier, result }, n);
          s.pending.set(result, 0);
        }
      }
    },
  });
  const bounds = latencyBucketsSeconds;
  const duration = new FoldedHistogram(
    'strata_request_duration_seconds',
    'Request latency by operation and tier.',
    bounds,
    allSeries,
    () => {
      for (const s of allSeries()) {
        s.buckets.fill(0);
        s.sum = 0;
        s.count = 0;
        s.pending.clear();
      }
    },
  );
  // prom-client's Registry reads a metric only through name, help, type, aggregator, get() and reset().
  registry.registerMetric(duration as unknown as Histogram);
  return {
    request(operation, tier, result, seconds) {
      let tiers = byOperation.get(operation);
      if (tiers === undefined) {
        tiers = new Map();
        byOperation.set(operation, tiers);
      }
      let s = tiers.get(tier);
      if (s === undefined) {
        s = { operation, tier, buckets: new Array(bounds.length + 1).fill(0), sum: 0, count: 0, pending: new Map() };
        tiers.set(tier, s);
      }
      s.pending.set(result, (s.pending.get(result) ?? 0) + 1);
      let i = 0;
      while (i < bounds.length && seconds > bounds[i]!) i++;
      s.buckets[i]!++;
      s.sum += seconds;
      s.count++;
    },
  };
}
