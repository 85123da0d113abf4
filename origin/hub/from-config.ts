import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Verifier } from '../../shared/auth.ts';
import { kafkaGroupId, type OriginConfig } from '../../shared/config.ts';
import { hubTopics } from '../../shared/hub.ts';
import { kafkaConnectionFromConfig } from '../kafka/client.ts';
import type { TieredStore } from '../store/store.ts';
import { type HubConsumer, hubConsumer } from './consumer.ts';
import { memoryDedup, redisDedup } from './dedup.ts';
import { hubHandler, hubRoutes } from './handler.ts';
import type { HubTarget } from './operations.ts';

/** The hub's topic names under `HUB_TOPIC_PREFIX`. */
export function hubTopicNames(prefix: string) {
  return {
    operationRequest: `${prefix}${hubTopics.operationRequest}`,
    operationResponse: `${prefix}${hubTopics.operationResponse}`,
    managementRequest: `${prefix}${hubTopics.managementRequest}`,
    managementResponse: `${prefix}${hubTopics.managementResponse}`,
    dlq: `${prefix}cache.hub.dlq`,
  };
}

/**
 * The Message Hub consumer the config asks for (`HUB_ENABLED=true`), or null.
 * Dedup records live on the store's Redis when it has one, else in process.
 * Not started: call `start()`.
 * @throws Error naming `HUB_ENABLED` when Kafka is not configured.
 */
export function hubFromConfig(
  config: OriginConfig,
  deps: HubTarget & {
    store: TieredStore;
    verifier: Verifier | null;
    logger: Logger;
    /** Port the origin listens on, for its default id. */
    port?: number;
    /** Where `strata_hub_requests_total{outcome}` is registered (answered, replayed, dead_lettered). */
    registry?: Registry;
  },
): HubConsumer | null {
  if (!config.HUB_ENABLED) return null;
  const connection = kafkaConnectionFromConfig(config);
  if (!connection) throw new Error('HUB_ENABLED=true needs KAFKA_BROKERS');
  const names = hubTopicNames(config.HUB_TOPIC_PREFIX);
  const { logger } = deps;
  const requests = deps.registry
    ? new Counter({
        name: 'strata_hub_requests_total',
        help: 'Hub requests committed, by outcome: answered, replayed (a redelivered change answered from its record), dead_lettered',
        labelNames: ['outcome'],
        registers: [deps.registry],
      })
    : undefined;
  const handle = hubHandler({
    routes: hubRoutes(config.HUB_TOPIC_PREFIX, config.HUB_ALIASES),
    service: deps.service,
    reports: deps.reports,
    reloader: deps.reloader,
    verifier: deps.verifier,
    dedup: deps.store.redisClient ? redisDedup(deps.store.redisClient) : memoryDedup(),
    originId: config.ORIGIN_ID ?? `${hostname()}:${deps.port ?? config.ORIGIN_PORT}`,
    replyTopics: new Set(config.HUB_REPLY_TOPICS ?? [names.operationResponse, names.managementResponse]),
    redeliveryMs: config.HUB_REDELIVERY_MAX_MS,
    clockSkewMs: (config.AUTH_CLOCK_SKEW_SECONDS ?? 30) * 1000,
    onUnexpectedError: (error) => logger.error({ err: error }, 'hub request failed unexpectedly'),
  });
  return hubConsumer({
    connection,
    groupId: config.HUB_GROUP_ID ?? `${kafkaGroupId(config)}-hub`,
    requestTopics: [names.operationRequest, names.managementRequest, ...(config.HUB_ALIASES ?? []).map((a) => a.topic)],
    responseTopics: [names.operationResponse, names.managementResponse],
    dlqTopic: config.HUB_DLQ_TOPIC ?? names.dlq,
    handle,
    logger,
    sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: config.KAFKA_HEARTBEAT_INTERVAL_MS,
    fromBeginning: config.KAFKA_FROM_BEGINNING,
    fault: config.HUB_FAULT,
    onOutcome: (outcome) => requests?.inc({ outcome }),
  });
}
