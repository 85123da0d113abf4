import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { OriginConfig } from '../shared/config.ts';
import { StatsCollector } from './dashboard/stats-collector.ts';
import { type HealthEvents, kafkaHealthSink, startHealthEvents } from './health/health-events.ts';
import { kafkaConnectionFromConfig } from './kafka/client.ts';
import type { OriginMetrics } from './metrics.ts';
import type { TieredStore } from './store/store.ts';
import { registerRedisNodeMetrics, registerTierMetrics } from './store-metrics.ts';

/** The origin's dashboard and health events (docs/operating.md). */
export interface Observability {
  readonly stats: StatsCollector;
  /** The health-event timer once started, when Kafka and an interval are configured. */
  readonly health: HealthEvents | undefined;
  /** Starts sampling and health events; `port` names this origin in events by default. */
  start(port: number): void;
  stop(): Promise<void>;
}

/**
 * Prepares the collector behind `/dashboard`, `/api/v1/stats` and
 * `/api/v1/edges/stats` (the app mounts those routes) and the periodic work:
 * dashboard points every `STATS_SAMPLE_SECONDS`, and `cache.health.status`
 * events to `KAFKA_HEALTH_TOPIC` every `HEALTH_EVENT_INTERVAL_SECONDS` when
 * `KAFKA_BROKERS` is set. Nothing runs until `start()`.
 */
export function observe(deps: {
  config: OriginConfig;
  metrics: OriginMetrics;
  store: TieredStore;
  logger: Logger;
}): Observability {
  const { config, store } = deps;
  const stats = new StatsCollector({
    registry: deps.metrics.registry,
    sampleMs: config.STATS_SAMPLE_SECONDS * 1000,
    keep: Math.ceil(config.STATS_WINDOW_SECONDS / config.STATS_SAMPLE_SECONDS),
    // An edge missing three of its reports is gone from the list.
    edgeExpiryMs: Math.max(15_000, config.STATS_SAMPLE_SECONDS * 3000),
  });
  registerTierMetrics(deps.metrics.registry, store);
  if (store.redisClient) registerRedisNodeMetrics(deps.metrics.registry, store.redisClient);
  let health: HealthEvents | undefined;
  return {
    stats,
    get health() {
      return health;
    },
    start(port) {
      stats.start();
      const kafka = kafkaConnectionFromConfig(config);
      if (!kafka || config.HEALTH_EVENT_INTERVAL_SECONDS === 0) return;
      health = startHealthEvents({
        registry: deps.metrics.registry,
        breakerState: () => store.health().breaker ?? undefined,
        sink: kafkaHealthSink({
          connection: { ...kafka, clientId: `${kafka.clientId}-health` },
          topic: config.KAFKA_HEALTH_TOPIC,
        }),
        intervalMs: config.HEALTH_EVENT_INTERVAL_SECONDS * 1000,
        serviceId: config.ORIGIN_ID ?? `${hostname()}:${port}`,
        logger: deps.logger,
      });
    },
    async stop() {
      await Promise.all([stats.stop(), health?.stop()]);
    },
  };
}
