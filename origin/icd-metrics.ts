import { hostname } from 'node:os';
import { memoryUsage } from 'node:process';
import { Gauge, Histogram, type Registry } from 'prom-client';
import { memoByLabels, type RequestMetrics } from '../shared/metrics.ts';

/**
 * The metric names of the interface control document, §6.1, next to
 * Strata's own `strata_*` metrics (docs/operating.md):
 *
 * | ICD metric | type | labels | Strata's meaning |
 * |---|---|---|---|
 * | `cache_hit_rate` | gauge | service, operation | hits (incl. stale) ÷ reads of `get`/`batch_get` over the last `hitRateWindowMs`; absent with no reads |
 * | `cache_latency` | histogram | service, operation | request latency, **seconds** (the ICD names no unit; Prometheus base unit) |
 * | `cache_memory_usage` | gauge | node, type | bytes: `rss`, `heap_used`, and per in-memory tier (`edge_tier`, …) |
 * | `cache_node_status` | gauge | node, zone | 1 when this node can serve fully (edge: purge stream up; origin: breaker closed), else 0 |
 * | `cache_replication_lag` | gauge | node, target | edge only: seconds from the origin's acknowledgement to this edge applying the last purge |
 */
export interface IcdMetricsOptions {
  /** `service` label: `strata-origin` or `strata-edge`. */
  readonly service: string;
  /** `node` label, read at scrape time (the port is known only after listening). */
  readonly node: () => string;
  /** `zone` label of `cache_node_status` (region or availability zone); empty by default. */
  readonly zone?: string;
  /** 1 healthy, 0 not (see the table); may read other metrics asynchronously. */
  readonly status: () => number | Promise<number>;
  /** Extra memory figures by `type`, bytes, read at scrape time. */
  readonly memory?: () => Record<string, number>;
  /** Edge: the origin (`target`) and the last purge lag, seconds; undefined before the first purge. */
  readonly replicationLag?: () => { target: string; seconds: number } | undefined;
  /** Buckets of `cache_latency`, seconds (the node's `strata_request_duration_seconds` buckets). */
  readonly latencyBuckets: number[];
  /** Window of `cache_hit_rate`, milliseconds (default 60 s). */
  readonly hitRateWindowMs?: number;
  readonly now?: () => number;
}

const readOperations = new Set(['get', 'batch_get']);
const slots = 12;

/**
 * Registers the ICD §6.1 metrics on `registry` and returns `metrics` with a
 * `request()` that also feeds them (one histogram observation and two array
 * increments per request).
 */
export function withIcdMetrics<M extends RequestMetrics>(
  metrics: M,
  registry: Registry,
  options: IcdMetricsOptions,
): M {
  const now = options.now ?? Date.now;
  const slotMs = (options.hitRateWindowMs ?? 60_000) / slots;
  // Per read operation, a ring of `slots` time slots of (hits, reads): the window slides by one slot.
  const rings = new Map<string, { slot: number[]; hits: number[]; reads: number[] }>();
  const ring = (operation: string) => {
    let r = rings.get(operation);
    if (!r) {
      r = { slot: new Array(slots).fill(-1), hits: new Array(slots).fill(0), reads: new Array(slots).fill(0) };
      rings.set(operation, r);
    }
    return r;
  };
  const latency = new Histogram({
    name: 'cache_latency',
    help: 'ICD §6.1: request latency in seconds, by operation.',
    labelNames: ['service', 'operation'] as const,
    buckets: options.latencyBuckets,
    registers: [registry],
  });
  const latencyChild = memoByLabels((operation) => latency.labels(options.service, operation!));
  new Gauge({
    name: 'cache_hit_rate',
    help: 'ICD §6.1: hits (incl. stale) per read over the last minute, by read operation.',
    labelNames: ['service', 'operation'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const current = Math.floor(now() / slotMs);
      for (const [operation, r] of rings) {
        let hits = 0;
        let reads = 0;
        for (let i = 0; i < slots; i++) {
          if (r.slot[i]! > current - slots) {
            hits += r.hits[i]!;
            reads += r.reads[i]!;
          }
        }
        if (reads > 0) this.set({ service: options.service, operation }, hits / reads);
      }
    },
  });
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
  const inner = metrics.request.bind(metrics);
  // The metrics objects are plain object literals: a spread keeps every other member.
  return {
    ...metrics,
    request(operation: string, tier: string, result: string, seconds: number) {
      inner(operation, tier, result, seconds);
      latencyChild(operation).observe(seconds);
      if (!readOperations.has(operation) || (result !== 'hit' && result !== 'stale' && result !== 'miss')) return;
      const r = ring(operation);
      const slot = Math.floor(now() / slotMs);
      const i = slot % slots;
      if (r.slot[i] !== slot) {
        r.slot[i] = slot;
        r.hits[i] = 0;
        r.reads[i] = 0;
      }
      r.reads[i]! += 1;
      if (result !== 'miss') r.hits[i]! += 1;
    },
  };
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
