import { hostname } from 'node:os';
import { memoryUsage } from 'node:process';
import { Gauge, type Metric, type MetricValue, type Registry } from 'prom-client';

/**
 * The metric names of the interface control document, §6.1, next to
 * Strata's own `strata_*` metrics (docs/operating.md):
 *
 * | ICD metric | type | labels | Strata's meaning |
 * |---|---|---|---|
 * | `cache_hit_rate` | gauge | service, operation | hits (incl. stale) ÷ reads of `get`/`batch_get` over about the last `hitRateWindowMs`; absent with no reads |
 * | `cache_latency` | histogram | service, operation | request latency, **seconds** (the ICD names no unit; Prometheus base unit) |
 * | `cache_memory_usage` | gauge | node, type | bytes: `rss`, `heap_used`, and per in-memory tier (`edge_tier`, …) |
 * | `cache_node_status` | gauge | node, zone | 1 when this node can serve fully (edge: purge stream up; origin: breaker closed), else 0 |
 * | `cache_replication_lag` | gauge | node, target | edge only: seconds from the origin's acknowledgement to this edge applying the last purge |
 *
 * All are computed at scrape time from the node's `strata_requests_total`
 * and `strata_request_duration_seconds` (which must be registered on the same
 * registry), so the request path pays nothing for them.
 */
export interface IcdMetricsOptions {
  /** `service` label: `strata-origin` or `strata-edge`. */
  readonly service: string;
  /** `node` label, read at scrape time. */
  readonly node: () => string;
  /** `zone` label of `cache_node_status` (region or availability zone); empty by default. */
  readonly zone?: string;
  /** 1 healthy, 0 not (see the table); may read other metrics asynchronously. */
  readonly status: () => number | Promise<number>;
  /** Extra memory figures by `type`, bytes, read at scrape time. */
  readonly memory?: () => Record<string, number>;
  /** Edge: the origin (`target`) and the last purge lag, seconds; undefined before the first purge. */
  readonly replicationLag?: () => { target: string; seconds: number } | undefined;
  /** Window of `cache_hit_rate`, milliseconds (default 60 s). */
  readonly hitRateWindowMs?: number;
  readonly now?: () => number;
}

const readOperations = new Set(['get', 'batch_get']);

/** Per read operation: reads, and reads answered (hit or stale), cumulative. */
type ReadTally = Map<string, { hits: number; reads: number }>;

/**
 * Registers the ICD §6.1 metrics on `registry` (see {@link IcdMetricsOptions}).
 *
 * `cache_hit_rate` keeps the tallies each scrape saw for one window and
 * answers the change since the oldest of them (since start-up on a first
 * scrape): with Prometheus scraping every 15 s that is the last minute.
 */
export function registerIcdMetrics(registry: Registry, options: IcdMetricsOptions): void {
  const now = options.now ?? Date.now;
  const windowMs = options.hitRateWindowMs ?? 60_000;
  const seen: { t: number; tally: ReadTally }[] = [];

  const readTally = async (): Promise<ReadTally> => {
    const tally: ReadTally = new Map();
    const requests = registry.getSingleMetric('strata_requests_total');
    if (!requests) return tally;
    for (const v of (await requests.get()).values) {
      const operation = String(v.labels.operation);
      if (!readOperations.has(operation)) continue;
      const t = tally.get(operation) ?? { hits: 0, reads: 0 };
      const result = v.labels.result;
      if (result === 'hit' || result === 'stale') t.hits += v.value;
      if (result === 'hit' || result === 'stale' || result === 'miss') t.reads += v.value;
      tally.set(operation, t);
    }
    return tally;
  };

  new Gauge({
    name: 'cache_hit_rate',
    help: 'ICD §6.1: hits (incl. stale) per read over about the last minute, by read operation.',
    labelNames: ['service', 'operation'] as const,
    registers: [registry],
    async collect() {
      const t = now();
      const tally = await readTally();
      while (seen.length > 0 && seen[0]!.t < t - windowMs) seen.shift();
      const base = seen[0]?.tally;
      seen.push({ t, tally });
      this.reset();
      for (const [operation, cur] of tally) {
        const before = base?.get(operation) ?? { hits: 0, reads: 0 };
        const reads = cur.reads - before.reads;
        if (reads > 0) this.set({ service: options.service, operation }, (cur.hits - before.hits) / reads);
      }
    },
  });

  // cache_latency is strata_request_duration_seconds summed over tiers, relabelled: computed when scraped.
  const latencyName = 'cache_latency';
  const latencyHelp = 'ICD §6.1: request latency in seconds, by operation.';
  const latency = {
    name: latencyName,
    help: latencyHelp,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const source = registry.getSingleMetric('strata_request_duration_seconds');
      const sums = new Map<string, MetricValue<string> & { metricName: string }>();
      if (source) {
        for (const v of (await source.get()).values as (MetricValue<string> & { metricName?: string })[]) {
          const metricName = (v.metricName ?? '').replace('strata_request_duration_seconds', latencyName);
          const { operation, le } = v.labels;
          const key = `${metricName}\u0000${operation}\u0000${le ?? ''}`;
          const sum = sums.get(key);
          if (sum) sum.value += v.value;
          else {
            const labels =
              le === undefined ? { service: options.service, operation } : { le, service: options.service, operation };
            sums.set(key, { metricName, labels, value: v.value });
          }
        }
      }
      return { name: latencyName, help: latencyHelp, type: 'histogram', aggregator: 'sum', values: [...sums.values()] };
    },
    reset() {},
  };
  registry.registerMetric(latency as unknown as Metric);

  new Gauge({
    name: 'cache_memory_usage',
    help: 'ICD §6.1: memory in bytes, by type (rss, heap_used, in-memory tiers).',
    labelNames: ['node', 'type'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const node = options.node();
      const m = memoryUsage();
      this.set({ node, type: 'rss' }, m.rss);
      this.set({ node, type: 'heap_used' }, m.heapUsed);
      for (const [type, bytes] of Object.entries(options.memory?.() ?? {})) this.set({ node, type }, bytes);
    },
  });
  new Gauge({
    name: 'cache_node_status',
    help: 'ICD §6.1: 1 when this node serves fully (edge: purge stream up; origin: breaker closed), else 0.',
    labelNames: ['node', 'zone'] as const,
    registers: [registry],
    async collect() {
      const status = await options.status();
      this.reset();
      this.set({ node: options.node(), zone: options.zone ?? '' }, status);
    },
  });
  if (options.replicationLag) {
    const read = options.replicationLag;
    new Gauge({
      name: 'cache_replication_lag',
      help: "ICD §6.1: seconds from the origin's acknowledgement to this edge applying the last purge.",
      labelNames: ['node', 'target'] as const,
      registers: [registry],
      collect() {
        this.reset();
        const lag = read();
        if (lag) this.set({ node: options.node(), target: lag.target }, lag.seconds);
      },
    });
  }
}

/**
 * An origin's `cache_node_status`: 1 unless the Redis breaker's
 * `strata_breaker_state{state="closed"}` reads 0 (no breaker, embedded store: 1).
 */
export async function breakerClosedStatus(registry: Registry): Promise<number> {
  const metric = registry.getSingleMetric('strata_breaker_state');
  if (!metric) return 1;
  const { values } = await metric.get();
  const closed = values.find((v) => v.labels.state === 'closed');
  return closed === undefined || closed.value === 1 ? 1 : 0;
}

/** Default `node` label: host name and process id (unique per process on a host). */
export function defaultNodeName(): string {
  return `${hostname()}:${process.pid}`;
}
