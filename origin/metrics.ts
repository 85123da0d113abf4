import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { breakerClosedStatus, defaultNodeName, registerIcdMetrics } from '../platform/node/icd-metrics.ts';
import { latencyBucketsSeconds, requestMetrics } from '../platform/node/request-metrics.ts';
import type { RequestMetrics } from '../shared/metrics.ts';

export { latencyBucketsSeconds } from '../platform/node/request-metrics.ts';

export interface OriginMetrics extends RequestMetrics {
  readonly registry: Registry;
  readonly storeErrors: Counter<'operation'>;
  readonly purges: Counter<'action'>;
  /** Invalidation events by source (`kafka`, `in-process`) and result (`applied`, `duplicate`, `failed`, `dead_lettered`). */
  readonly invalidations: Counter<'source' | 'result'>;
  /** Seconds from an event's `timestamp` (producer clock) to the purge handed to the hub. */
  readonly invalidationLag: Histogram<'source'>;
  /** Kafka messages behind the partition's high watermark after the last batch, by partition. */
  readonly consumerLag: Gauge<'partition'>;
  /** Bytes of values stored compressed, before compression. */
  readonly compressionInputBytes: Counter;
  /** Bytes those values take stored (the compressed envelope). */
  readonly compressionOutputBytes: Counter;
}

/**
 * The origin's Prometheus metrics (prom-client), in base units with
 * Prometheus naming: `strata_requests_total`, `strata_request_duration_seconds`,
 * `strata_store_errors_total`, `strata_purges_total`, `strata_connected_edges`,
 * `strata_invalidation_events_total`, `strata_invalidation_lag_seconds`,
 * `strata_invalidation_consumer_lag_messages`,
 * `strata_compression_input_bytes_total`, `strata_compression_output_bytes_total`,
 * plus the process defaults and the ICD §6.1 names (`platform/node/icd-metrics.ts`).
 * No key is ever a label.
 *
 * @param gauges callbacks read at scrape time (connected edges, store entries).
 */
export function originMetrics(gauges: { connectedEdges: () => number; storeEntries?: () => number }): OriginMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ side: 'origin' });
  collectDefaultMetrics({ register: registry });
  const requests = requestMetrics(registry);
  const storeErrors = new Counter({
    name: 'strata_store_errors_total',
    help: 'Failed store calls by operation.',
    labelNames: ['operation'] as const,
    registers: [registry],
  });
  const purges = new Counter({
    name: 'strata_purges_total',
    help: 'Purge messages published to edges, by action.',
    labelNames: ['action'] as const,
    registers: [registry],
  });
  const invalidations = new Counter({
    name: 'strata_invalidation_events_total',
    help: 'Invalidation events by source and result (applied, duplicate, failed, dead_lettered).',
    labelNames: ['source', 'result'] as const,
    registers: [registry],
  });
  const invalidationLag = new Histogram({
    name: 'strata_invalidation_lag_seconds',
    help: "Seconds from an invalidation event's timestamp to its purge being handed to the hub.",
    labelNames: ['source'] as const,
    buckets: latencyBucketsSeconds,
    registers: [registry],
  });
  const consumerLag = new Gauge({
    name: 'strata_invalidation_consumer_lag_messages',
    help: 'Kafka invalidation messages not yet consumed, by partition (high watermark after the last batch).',
    labelNames: ['partition'] as const,
    registers: [registry],
  });
  const compressionInputBytes = new Counter({
    name: 'strata_compression_input_bytes_total',
    help: 'Bytes of values stored compressed, before compression.',
    registers: [registry],
  });
  const compressionOutputBytes = new Counter({
    name: 'strata_compression_output_bytes_total',
    help: 'Bytes of values stored compressed, as stored (after compression).',
    registers: [registry],
  });
  new Gauge({
    name: 'strata_connected_edges',
    help: 'Edges subscribed to the purge stream now.',
    registers: [registry],
    collect() {
      this.set(gauges.connectedEdges());
    },
  });
  if (gauges.storeEntries) {
    const read = gauges.storeEntries;
    new Gauge({
      name: 'strata_store_entries',
      help: 'Entries held by the embedded memory store.',
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  }
  const metrics: OriginMetrics = {
    registry,
    storeErrors,
    compressionInputBytes,
    compressionOutputBytes,
    purges,
    invalidations,
    invalidationLag,
    consumerLag,
    contentType: registry.contentType,
    request(operation, tier, result, seconds) {
      requests.request(operation, tier, result, seconds);
    },
    async render() {
      return await registry.metrics();
    },
  };
  registerIcdMetrics(registry, {
    service: 'strata-origin',
    node: defaultNodeName,
    status: () => breakerClosedStatus(registry),
  });
  return metrics;
}
