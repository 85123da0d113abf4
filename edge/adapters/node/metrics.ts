import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { evictionCounter } from '../../../platform/node/eviction-metrics.ts';
import { defaultNodeName, registerIcdMetrics } from '../../../platform/node/icd-metrics.ts';
import { requestMetrics } from '../../../platform/node/request-metrics.ts';
import type { EdgeMetrics, EdgeMetricsSources } from '../../build-edge.ts';
import type { EdgeTier } from '../../core/tier.ts';

/** An edge's metrics on Node: a prom-client registry behind them. */
export interface EdgeNodeMetrics extends EdgeMetrics {
  readonly registry: Registry;
}

/**
 * Prometheus metrics of a Node edge (prom-client): requests and latency by
 * operation/tier/result, origin loads after coalescing, purge messages
 * applied, stream reconnects, the lease's age, lapses and per-key
 * revalidations by outcome, the tier's entries, bytes and evictions, and
 * the ICD §6.1 names (`platform/node/icd-metrics.ts`).
 */
export function edgeNodeMetrics(tier: EdgeTier, { subscribed, leaseAgeMs }: EdgeMetricsSources): EdgeNodeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ side: 'edge' });
  collectDefaultMetrics({ register: registry });
  const requests = requestMetrics(registry);
  const loads = new Counter({
    name: 'strata_edge_origin_loads_total',
    help: 'Origin loads after coalescing concurrent misses.',
    registers: [registry],
  });
  const purges = new Counter({
    name: 'strata_edge_purge_messages_total',
    help: 'Purge-stream messages applied, by type.',
    labelNames: ['type'] as const,
    registers: [registry],
  });
  const purged = new Counter({
    name: 'strata_edge_purged_entries_total',
    help: 'Entries removed from the tier by purges and resets.',
    registers: [registry],
  });
  const lag = new Histogram({
    name: 'strata_edge_purge_lag_seconds',
    help: "Time from the origin's acknowledgement of a change to this edge applying its purge.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const reconnects = new Counter({
    name: 'strata_edge_purge_stream_reconnects_total',
    help: 'Times the purge stream was lost.',
    registers: [registry],
  });
  new Gauge({
    name: 'strata_edge_tier_entries',
    help: 'Entries in the near-user tier.',
    registers: [registry],
    collect() {
      this.set(tier.size);
    },
  });
  new Gauge({
    name: 'strata_edge_tier_bytes',
    help: 'Bytes counted against EDGE_MAX_BYTES.',
    registers: [registry],
    collect() {
      this.set(tier.bytes);
    },
  });
  evictionCounter(
    registry,
    'strata_edge_tier_evictions_total',
    'Entries dropped from the near-user tier, by policy and reason (evict: to stay within EDGE_MAX_BYTES; expire: TTL).',
    tier.policy ?? 'unknown',
    () => tier.evictionsByReason ?? { evict: tier.evictions ?? 0, expire: 0 },
  );
  new Gauge({
    name: 'strata_edge_purge_stream_connected',
    help: '1 while the purge stream is up.',
    registers: [registry],
    collect() {
      this.set(subscribed() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'strata_edge_lease_age_seconds',
    help: "Seconds since the origin last confirmed this edge's view of the purge log with a live tail (-1 before the first).",
    registers: [registry],
    collect() {
      const age = leaseAgeMs();
      this.set(age === null ? -1 : age / 1000);
    },
  });
  const lapses = new Counter({
    name: 'strata_edge_lease_lapses_total',
    help: 'Times the lease on the tier lapsed (no live confirmation within EDGE_LEASE_MS).',
    registers: [registry],
  });
  const revalidations = new Counter({
    name: 'strata_edge_revalidations_total',
    help: 'Per-key revalidations with the origin while the lease was lapsed, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  let lastLagSeconds: number | undefined;
  const metrics: EdgeNodeMetrics = {
    registry,
    contentType: registry.contentType,
    request(operation, t, result, seconds) {
      requests.request(operation, t, result, seconds);
    },
    async render() {
      return await registry.metrics();
    },
    originLoad: () => loads.inc(),
    purgeApplied(type, removed, acknowledgedAtMs) {
      purges.inc({ type });
      purged.inc(removed);
      // Wall clocks of two hosts: a negative lag means skew, not time travel; clamp it.
      if (acknowledgedAtMs !== undefined) {
        lastLagSeconds = Math.max(0, Date.now() - acknowledgedAtMs) / 1000;
        lag.observe(lastLagSeconds);
      }
    },
    reconnect: () => reconnects.inc(),
    leaseLapse: () => lapses.inc(),
    revalidation: (outcome) => revalidations.inc({ outcome }),
  };
  registerIcdMetrics(registry, {
    service: 'strata-edge',
    node: defaultNodeName,
    status: () => (subscribed() ? 1 : 0),
    memory: () => ({ edge_tier: tier.bytes }),
    replicationLag: () => (lastLagSeconds === undefined ? undefined : { target: 'origin', seconds: lastLagSeconds }),
  });
  return metrics;
}
