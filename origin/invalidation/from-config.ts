import type { Logger } from 'pino';
import { kafkaGroupId, type OriginConfig } from '../../shared/config.ts';
import type { CacheService } from '../cache-service.ts';
import { kafkaConnectionFromConfig } from '../kafka/client.ts';
import type { OriginMetrics } from '../metrics.ts';
import type { Regions } from '../regions/regions.ts';
import { InvalidationApplier } from './applier.ts';
import { type InProcessSource, inProcessSource } from './in-process-source.ts';
import { type KafkaSource, kafkaSource } from './kafka-source.ts';

/**
 * The invalidation source the config names: the Kafka consumer when
 * `KAFKA_BROKERS` is set, else the in-process source. Both apply events
 * through one {@link InvalidationApplier} wired to the origin's metrics
 * (`strata_invalidation_events_total`, `strata_invalidation_lag_seconds`, `strata_invalidation_apply_seconds`,
 * `strata_invalidation_consumer_lag_messages`, `strata_invalidation_sampled_total`).
 * Not started: call `start()`.
 */
export function invalidationSourceFromConfig(
  config: OriginConfig,
  deps: {
    service: CacheService;
    logger: Logger;
    metrics: Pick<
      OriginMetrics,
      'invalidations' | 'invalidationLag' | 'invalidationApply' | 'consumerLag' | 'invalidationsSampled'
    >;
    /** Cross-region hooks (`origin/regions/`); absent = events are applied whatever their region. */
    regions?: Pick<Regions, 'region' | 'onRegionApplied' | 'onCaughtUp' | 'resetNamespaces'>;
  },
): KafkaSource | InProcessSource {
  const { metrics, regions } = deps;
  const applier = new InvalidationApplier({
    ...(regions
      ? {
          region: regions.region,
          resetNamespaces: (namespaces, source) => regions.resetNamespaces(namespaces, source),
          onRegionApplied: (source, lagMs) => regions.onRegionApplied(source, lagMs),
        }
      : {}),
    service: deps.service,
    dedupWindow: config.INVALIDATION_DEDUP_WINDOW,
    onOutcome: (source, result, lagMs, applyMs) => {
      metrics.invalidations.inc({ source, result });
      if (lagMs !== undefined) metrics.invalidationLag.observe({ source }, Math.max(0, lagMs) / 1000);
      if (applyMs !== undefined) metrics.invalidationApply.observe({ source }, applyMs / 1000);
    },
  });
  const connection = kafkaConnectionFromConfig(config);
  if (!connection) return inProcessSource(applier);
  return kafkaSource({
    connection,
    topic: config.KAFKA_INVALIDATION_TOPIC,
    groupId: kafkaGroupId(config),
    dlqTopic: config.KAFKA_DLQ_TOPIC,
    fromBeginning: config.KAFKA_FROM_BEGINNING,
    sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: config.KAFKA_HEARTBEAT_INTERVAL_MS,
    applier,
    logger: deps.logger,
    onDeadLetter: () => metrics.invalidations.inc({ source: 'kafka', result: 'dead_lettered' }),
    onLag: (partition, messages) => metrics.consumerLag.set({ partition: String(partition) }, messages),
    onCaughtUp: regions ? () => regions.onCaughtUp() : undefined,
    fetchSampleMs: config.KAFKA_FETCH_SAMPLE_MS,
    onSampled: () => metrics.invalidationsSampled.inc(),
  });
}
