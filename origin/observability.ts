import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { OriginConfig } from '../shared/config.ts';
import { type HealthEvents, kafkaHealthSink, startHealthEvents } from './health/health-events.ts';
import type { OriginMetrics } from './metrics.ts';
import { isTieredStore } from './store/resilient.ts';
import type { Store } from './store/store.ts';

/** What `startOrigin` runs besides serving: health events (and, later, the dashboard's sampler). */
export interface Observability {
  readonly health: HealthEvents | undefined;
  stop(): Promise<void>;
}

/**
 * Starts the origin's periodic observability work: `cache.health.status`
 * events to `KAFKA_HEALTH_TOPIC` every `HEALTH_EVENT_INTERVAL_SECONDS` when
 * `KAFKA_BROKERS` is set (docs/operating.md).
 * @param port the origin's listening port, for the default `service_id`.
 */
export async function startObservability(deps: {
  config: OriginConfig;
  metrics: OriginMetrics;
  store: Store;
  logger: Logger;
  port: number;
}): Promise<Observability> {
  const { config, store } = deps;
  let health: HealthEvents | undefined;
  if (config.KAFKA_BROKERS && config.HEALTH_EVENT_INTERVAL_SECONDS > 0) {
    const sink = kafkaHealthSink({
      brokers: config.KAFKA_BROKERS,
      clientId: `${config.KAFKA_CLIENT_ID}-health`,
      topic: config.KAFKA_HEALTH_TOPIC,
    });
    health = startHealthEvents({
      registry: deps.metrics.registry,
      breakerState: () => (isTieredStore(store) ? store.breaker.state : undefined),
      sink,
      intervalMs: config.HEALTH_EVENT_INTERVAL_SECONDS * 1000,
      serviceId: config.ORIGIN_ID ?? `${hostname()}:${deps.port}`,
      logger: deps.logger,
    });
  }
  return {
    health,
    async stop() {
      await health?.stop();
    },
  };
}
