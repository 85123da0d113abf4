import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Verifier } from '../../shared/auth.ts';
import { kafkaGroupId, type OriginConfig } from '../../shared/config.ts';
import type { CacheService } from '../cache-service.ts';
import { ensureTopics } from '../invalidation/kafka-topics.ts';
import { kafkaClient, kafkaConnectionFromConfig } from '../kafka/client.ts';
import type { PurgeBus } from '../purge/bus.ts';
import { defaultPurgeLogKey } from '../purge/redis-stream-bus.ts';
import type { Reloader } from '../reload.ts';
import { type CommandConsumer, commandConsumer } from './command-consumer.ts';
import { type ItemPublisher, inProcessItemPublisher, logItemPublisher } from './item-publisher.ts';

/** The hub events of a running origin. */
export interface HubEvents {
  /** Publishes `cache.item.updated`. */
  readonly publisher: ItemPublisher;
  /** Obeys `config.cache.update` and `control.cache.action`. */
  readonly commands: CommandConsumer;
  /** Creates the topics when missing (in the background), starts publishing and consuming. */
  start(): void;
  /** Stops consuming, releases the publisher's lease, disconnects. Idempotent. */
  close(): Promise<void>;
}

export interface HubEventsDeps {
  readonly service: CacheService;
  readonly reloader: Reloader;
  readonly bus: PurgeBus;
  /** The store's Redis when the purge bus is the region's log on it (then events come from that log). */
  readonly redisClient: Redis | Cluster | undefined;
  readonly auth: Verifier | null;
  readonly registry: Registry;
  readonly logger: Logger;
}

/**
 * The hub events the config asks for (docs/message-hub.md): none unless
 * `HUB_EVENTS_ENABLED=true` and `KAFKA_BROKERS` is set. Item events come
 * from the region's purge log when the purge bus is on Redis (at least
 * once), else from this process's bus (best effort).
 */
export function hubEventsFromConfig(config: OriginConfig, deps: HubEventsDeps): HubEvents | null {
  const connection = kafkaConnectionFromConfig(config);
  if (!config.HUB_EVENTS_ENABLED || !connection) return null;
  const { logger, registry } = deps;
  const kafka = kafkaClient(connection, {
    logger,
    connectionTimeoutMs: 3_000,
    retry: { initialRetryTime: 200, maxRetryTime: 3_000, retries: 5 },
  });
  const replicaId = config.ORIGIN_ID ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const published = new Counter({
    name: 'strata_hub_item_events_total',
    help: 'cache.item.updated events Kafka acknowledged (result=published), lost-entry resets sent (reset), sends dropped by the in-process publisher (dropped).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const leader = new Gauge({
    name: 'strata_hub_item_events_leader',
    help: 'Whether this replica publishes the region item events now (1) or waits for the lease (0).',
    registers: [registry],
  });
  const commandsTotal = new Counter({
    name: 'strata_hub_commands_total',
    help: 'config.cache.update and control.cache.action messages by topic and result (applied, skipped: a peer applied it, or the refusal kind).',
    labelNames: ['topic', 'action', 'result'] as const,
    registers: [registry],
  });
  const source = {
    region: config.STRATA_REGION,
    serviceId: config.ORIGIN_ID ?? replicaId,
    // Idempotent (KIP-98) with one request in flight: a retried send is written once and the order holds.
    producer: kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false }),
    topic: config.KAFKA_ITEM_UPDATED_TOPIC,
    logger,
    events: {
      onLeadership: (held: boolean) => leader.set(held ? 1 : 0),
      onPublished: (count: number) => published.inc({ result: 'published' }, count),
      onLoss: () => published.inc({ result: 'reset' }),
      onError: (error: unknown, retryInMs: number | null) => {
        if (retryInMs === null) published.inc({ result: 'dropped' });
        logger.warn({ err: error, retryInMs }, 'item event publish failed');
      },
    },
  };
  const publisher = deps.redisClient
    ? logItemPublisher({
        ...source,
        client: deps.redisClient,
        logKey: config.PURGE_LOG_KEY,
        replicaId,
        leaseMs: config.HUB_EVENTS_LEASE_MS,
      })
    : inProcessItemPublisher({ ...source, bus: deps.bus });
  if (publisher.kind === 'in-process') leader.set(1);
  const commands = commandConsumer({
    kafka,
    configTopic: config.KAFKA_CONFIG_UPDATE_TOPIC,
    controlTopic: config.KAFKA_CONTROL_TOPIC,
    groupId: `${kafkaGroupId(config)}-commands-${replicaId}`,
    redis: deps.redisClient,
    claimPrefix: `${config.PURGE_LOG_KEY ?? defaultPurgeLogKey}:commands`,
    sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: config.KAFKA_HEARTBEAT_INTERVAL_MS,
    service: deps.service,
    reloader: deps.reloader,
    auth: deps.auth,
    logger,
    events: {
      onApplied: (topic, action, result) => commandsTotal.inc({ topic, action, result }),
      onRefused: (topic, kind) => commandsTotal.inc({ topic, action: 'none', result: kind }),
    },
  });
  let closed = false;
  let running: Promise<void> = Promise.resolve();
  return {
    publisher,
    commands,
    start() {
      publisher.start();
      running = (async () => {
        // Convenience for development; production topics are usually provisioned, and this is then a no-op.
        const admin = kafka.admin();
        try {
          await admin.connect();
          await ensureTopics(admin, [
            { topic: config.KAFKA_ITEM_UPDATED_TOPIC, numPartitions: 3 },
            { topic: config.KAFKA_CONFIG_UPDATE_TOPIC, numPartitions: 1 },
            { topic: config.KAFKA_CONTROL_TOPIC, numPartitions: 1 },
            { topic: `${config.KAFKA_CONFIG_UPDATE_TOPIC}.dlq`, numPartitions: 1 },
            { topic: `${config.KAFKA_CONTROL_TOPIC}.dlq`, numPartitions: 1 },
          ]);
        } catch (error) {
          logger.warn({ err: error }, 'could not create the hub event topics; using them anyway');
        } finally {
          await admin.disconnect().catch(() => {});
        }
        if (!closed) await commands.start();
      })().catch((error: unknown) => logger.error({ err: error }, 'hub command consumer did not start'));
    },
    async close() {
      if (closed) return;
      closed = true;
      await running;
      await commands.stop();
      await publisher.close();
    },
  };
}
