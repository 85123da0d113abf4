import { z } from 'zod';

/**
 * The numbers behind the origin's dashboard and health events, taken from
 * each node's own Prometheus registry (so they are the scraped numbers, not a
 * second bookkeeping). Pure and runtime-free: edges send snapshots as JSON,
 * the origin diffs them into per-interval points.
 *
 * A snapshot holds cumulative counters (flat keys, below) and gauges:
 * - `requests:<operation>:<tier>:<result>` from `strata_requests_total`;
 * - `get_le:<le>` and `get_count`: the `get` latency histogram summed over tiers;
 * - `purge_lag_le:<le>` and `purge_lag_count`: `strata_edge_purge_lag_seconds` (edges);
 * - gauges `breaker:<state>` and `connected_edges` (origin).
 */
export const snapshotSchema = z.object({
  counters: z.record(z.string().max(200), z.number().nonnegative()),
  gauges: z.record(z.string().max(200), z.number()),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

/** What an edge POSTs to the origin's `/api/v1/edges/stats`. */
export const edgeReportSchema = z.object({
  edge_id: z.string().min(1).max(64),
  snapshot: snapshotSchema,
});
export type EdgeReport = z.infer<typeof edgeReportSchema>;

/** One metric of prom-client's `registry.getMetricsAsJSON()`. */
export interface MetricJson {
  readonly name: string;
  readonly values: readonly {
    readonly value: number;
    readonly metricName?: string;
    readonly labels: Readonly<Record<string, string | number>>;
  }[];
}

const add = (into: Record<string, number>, key: string, v: number) => {
  into[key] = (into[key] ?? 0) + v;
};

/** Builds a {@link Snapshot} from a registry's JSON; metrics it does not know are ignored. */
export function snapshotFromMetrics(metrics: readonly MetricJson[]): Snapshot {
  const counters: Record<string, number> = {};
  const gauges: Record<string, number> = {};
  for (const m of metrics) {
    for (const v of m.values) {
      const l = v.labels;
      if (m.name === 'strata_requests_total') add(counters, `requests:${l.operation}:${l.tier}:${l.result}`, v.value);
      else if (m.name === 'strata_request_duration_seconds' && l.operation === 'get') {
        if (v.metricName?.endsWith('_bucket')) add(counters, `get_le:${l.le}`, v.value);
        else if (v.metricName?.endsWith('_count')) add(counters, 'get_count', v.value);
      } else if (m.name === 'strata_edge_purge_lag_seconds') {
        if (v.metricName?.endsWith('_bucket')) add(counters, `purge_lag_le:${l.le}`, v.value);
        else if (v.metricName?.endsWith('_count')) add(counters, 'purge_lag_count', v.value);
      } else if (m.name === 'strata_breaker_state') gauges[`breaker:${l.state}`] = v.value;
      else if (m.name === 'strata_connected_edges') gauges.connected_edges = v.value;
    }
  }
  return { counters, gauges };
}

/**
 * `cur − prev` per counter. A counter lower than before means the node
 * restarted (counters reset), so the whole of `cur` is the increase, as
 * Prometheus's `rate()` treats resets.
 */
export function counterIncrease(prev: Record<string, number> | undefined, cur: Record<string, number>) {
  const out: Record<string, number> = {};
  if (!prev) return { ...cur };
  for (const [k, v] of Object.entries(cur)) {
    if (v < (prev[k] ?? 0)) return { ...cur };
    out[k] = v - (prev[k] ?? 0);
  }
  return out;
}

/** Adds counter maps key by key. */
export function sumCounters(...maps: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of maps) for (const [k, v] of Object.entries(m)) add(out, k, v);
  return out;
}

/**
 * The `q` quantile (0..1) of a cumulative-bucket histogram given as
 * `prefix<le>` counters, interpolated linearly inside the bucket as
 * Prometheus's `histogram_quantile` does; null with no observations. A
 * quantile in the `+Inf` bucket answers the highest finite bound.
 */
export function histogramQuantile(counters: Record<string, number>, prefix: string, q: number): number | null {
  const buckets = Object.entries(counters)
    .filter(([k]) => k.startsWith(prefix))
    .map(([k, count]) => ({ le: k.slice(prefix.length) === '+Inf' ? Infinity : Number(k.slice(prefix.length)), count }))
    .sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerBound;
      if (b.count === lowerCount) return b.le;
      return lowerBound + ((b.le - lowerBound) * (rank - lowerCount)) / (b.count - lowerCount);
    }
    lowerBound = b.le;
    lowerCount = b.count;
  }
  return lowerBound;
}

/** Sum of `requests:*` counters matching the given parts (`undefined` = any). */
export function requestCount(
  counters: Record<string, number>,
  match: { operation?: string; tier?: string; results?: readonly string[] },
): number {
  let n = 0;
  for (const [k, v] of Object.entries(counters)) {
    if (!k.startsWith('requests:')) continue;
    const [, operation, tier, result] = k.split(':');
    if (match.operation !== undefined && operation !== match.operation) continue;
    if (match.tier !== undefined && tier !== match.tier) continue;
    if (match.results !== undefined && !match.results.includes(result!)) continue;
    n += v;
  }
  return n;
}

/** Breaker states in chart order: 0 closed, 1 half-open, 2 open, 3 isolated. */
export const breakerStates = ['closed', 'half-open', 'open', 'isolated'] as const;

/**
 * One point of the dashboard, for the interval ending at `t` (Unix ms).
 * Ratios are 0..1, latencies seconds, rates per second; null = no data.
 */
export interface StatsPoint {
  readonly t: number;
  /** Share of `get`s answered by each tier: `edge` among edge gets; `redis`, `memory`, `origin-local` among origin gets. */
  readonly hitRatio: Readonly<Record<string, number | null>>;
  readonly edgeP50: number | null;
  readonly edgeP99: number | null;
  readonly originP50: number | null;
  readonly originP99: number | null;
  /** All requests per second at the edges and at the origin. */
  readonly edgeRps: number;
  readonly originRps: number;
  readonly purgeLagP50: number | null;
  readonly purgeLagP99: number | null;
  /** Index into {@link breakerStates}; null without a breaker (embedded store). */
  readonly breaker: number | null;
  readonly connectedEdges: number;
}

/** Tiers the origin may answer from (ARCHITECTURE.md §2). */
export const originTiers = ['redis', 'memory', 'origin-local'] as const;

/**
 * Computes one {@link StatsPoint} from the counter increases of one interval
 * (`seconds` long) at the origin and summed over the edges, and the origin's
 * gauges at its end.
 */
export function statsPoint(
  t: number,
  seconds: number,
  origin: Record<string, number>,
  edges: Record<string, number>,
  gauges: Record<string, number>,
): StatsPoint {
  const ratio = (n: number, d: number) => (d > 0 ? n / d : null);
  const hit = ['hit', 'stale'];
  const edgeGets = requestCount(edges, { operation: 'get' });
  const originGets = requestCount(origin, { operation: 'get' });
  const hitRatio: Record<string, number | null> = {
    edge: ratio(requestCount(edges, { operation: 'get', tier: 'edge', results: hit }), edgeGets),
  };
  for (const tier of originTiers) {
    hitRatio[tier] = ratio(requestCount(origin, { operation: 'get', tier, results: hit }), originGets);
  }
  const state = breakerStates.findIndex((s) => gauges[`breaker:${s}`] === 1);
  return {
    t,
    hitRatio,
    edgeP50: histogramQuantile(edges, 'get_le:', 0.5),
    edgeP99: histogramQuantile(edges, 'get_le:', 0.99),
    originP50: histogramQuantile(origin, 'get_le:', 0.5),
    originP99: histogramQuantile(origin, 'get_le:', 0.99),
    edgeRps: requestCount(edges, {}) / seconds,
    originRps: requestCount(origin, {}) / seconds,
    purgeLagP50: histogramQuantile(edges, 'purge_lag_le:', 0.5),
    purgeLagP99: histogramQuantile(edges, 'purge_lag_le:', 0.99),
    breaker: state === -1 ? null : state,
    connectedEdges: gauges.connected_edges ?? 0,
  };
}
