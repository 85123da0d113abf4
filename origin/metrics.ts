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
  readonly invalidationApply: Histogram<'source'>;
  /** Kafka messages behind the partition's high watermark after the last batch, by partition. */
  readonly consumerLag: Gauge<'partition'>;
  /** Invalidation events the Kafka fetch sampler applied before the group consumer did (`KAFKA_FETCH_SAMPLE_MS`). */
  readonly invalidationsSampled: Counter;
  /** Purge log entries this replica relayed to its edges. */
  readonly purgeLogRelayed: Counter;
  /** `reset`s this replica's tail sent to its edges, by reason class (`incarnation`, `lost`, `gap`, `format`, `other`). */
  readonly purgeLogResets: Counter<'reason'>;
  /** Purge log entries skipped because they were not log entries (written by hand, corrupted). */
  readonly purgeLogMalformed: Counter;
  /** Purge intents left open past the intent timeout that this replica recovered (keys purged at the store's versions). */
  readonly purgeIntentsRecovered: Counter;
  /** Seconds from a staleness canary write to its purge being handed to one edge (one sample per edge). */
  readonly purgeCanaryLag: Histogram;
  /** Seconds from a staleness canary write to one edge reporting it applied the purge, by `edge` id. */
  readonly purgeCanaryApplied: Histogram<'edge'>;
  /** Bytes of values stored compressed, before compression. */
  readonly compressionInputBytes: Counter;
  /** Bytes those values take stored (the compressed envelope). */
  readonly compressionOutputBytes: Counter;
}

/** What the region's purge log reports at scrape time (absent for an in-process log). */
export interface PurgeLogGauges {
  /** Entries in the log now. */
  readonly length: number;
  /** Entries between the log's head and what this replica relayed. */
  readonly lagEntries: number;
  /** Milliseconds between the head's append time and that of the last entry this replica relayed. */
  readonly lagMs: number;
}

/**
 * The origin's Prometheus metrics (prom-client), in base units with
 * Prometheus naming: `strata_requests_total`, `strata_request_duration_seconds`,
 * `strata_store_errors_total`, `strata_purges_total`, `strata_connected_edges`,
 * `strata_invalidation_events_total`, `strata_invalidation_lag_seconds`,
 * `strata_invalidation_consumer_lag_messages`, `strata_invalidation_sampled_total`,
 * `strata_compression_input_bytes_total`, `strata_compression_output_bytes_total`,
 * plus the process defaults and the ICD §6.1 names (`platform/node/icd-metrics.ts`).
 * No key is ever a label.
 *
 * @param gauges callbacks read at scrape time (connected edges, store entries).
 */
export function originMetrics(gauges: {
  connectedEdges: () => number;
  storeEntries?: () => number;
  /** The purge log's length and this replica's lag, read at scrape time; unset = no such gauges. */
  purgeLog?: () => Promise<PurgeLogGauges | null>;
}): OriginMetrics {
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
  const invalidationApply = new Histogram({
    name: 'strata_invalidation_apply_seconds',
    help: 'Seconds an applied invalidation event took from the start of its apply to its purge being handed to the hub (store purge and purge log append).',
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
  const invalidationsSampled = new Counter({
    name: 'strata_invalidation_sampled_total',
    help: 'Invalidation events the Kafka fetch sampler applied before the group consumer did.',
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
  const purgeLogRelayed = new Counter({
    name: 'strata_purge_log_relayed_total',
    help: 'Purge log entries this replica relayed to its edges.',
    registers: [registry],
  });
  const purgeLogResets = new Counter({
    name: 'strata_purge_log_resets_total',
    help: 'Resets this replica sent to its edges because of the purge log, by reason class.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const purgeLogMalformed = new Counter({
    name: 'strata_purge_log_malformed_total',
    help: 'Purge log entries skipped because they were not valid log entries.',
    registers: [registry],
  });
  const purgeIntentsRecovered = new Counter({
    name: 'strata_purge_intents_recovered_total',
    help: 'Purge intents left open past the intent timeout (writer crashed or failed) that this replica recovered.',
    registers: [registry],
  });
  const purgeCanaryLag = new Histogram({
    name: 'strata_purge_canary_lag_seconds',
    help: 'Seconds from a staleness canary write to its purge being handed to one edge of this origin.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const purgeCanaryApplied = new Histogram({
    name: 'strata_purge_canary_applied_seconds',
    help: 'Seconds from a staleness canary write until one edge of this origin reported it applied the purge, by edge.',
    labelNames: ['edge'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  if (gauges.purgeLog) {
    const read = gauges.purgeLog;
    // One read per scrape feeds all three gauges.
    let pending: Promise<PurgeLogGauges | null> | null = null;
    const sample = () => {
      pending ??= read()
        .catch(() => null)
        .finally(() => setTimeout(() => (pending = null), 0));
      return pending;
    };
    const gauge = (name: string, help: string, pick: (g: PurgeLogGauges) => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        async collect() {
          const g = await sample();
          if (g) this.set(pick(g));
        },
      });
    gauge('strata_purge_log_length', 'Entries in the region purge log.', (g) => g.length);
    gauge('strata_purge_log_lag_entries', 'Purge log entries this replica has not relayed yet.', (g) => g.lagEntries);
    gauge(
      'strata_purge_log_lag_seconds',
      "Seconds between the purge log head's append time and the last entry this replica relayed.",
      (g) => g.lagMs / 1000,
    );
  }
  const metrics: OriginMetrics = {
    registry,
    purgeLogRelayed,
    purgeLogResets,
    purgeLogMalformed,
    purgeIntentsRecovered,
    purgeCanaryLag,
    purgeCanaryApplied,
    storeErrors,
    compressionInputBytes,
    compressionOutputBytes,
    purges,
    invalidations,
    invalidationLag,
    invalidationApply,
    consumerLag,
    invalidationsSampled,
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
