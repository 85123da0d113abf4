import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { OriginConfig } from '../../shared/config.ts';
import type { CacheService } from '../cache-service.ts';
import { kafkaClient, kafkaConnectionFromConfig } from '../kafka/client.ts';
import type { PurgeBus } from '../purge/bus.ts';
import { type CanarySourceReadiness, CrossRegionCanary } from './canary-arrivals.ts';
import { type ForwarderStatus, RegionForwarder } from './forwarder.ts';

/** Seconds: from tens of ms (the link up) to half an hour (a long partition healed). */
const crossRegionLagBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

/** The `region` detail of `/ready`. */
export interface RegionReadiness {
  /** This origin's region (`STRATA_REGION`). */
  readonly name: string;
  /** Whether this replica forwards the region's purges now (holds the lease); null without a forwarder. */
  readonly forwarder: boolean | null;
  /**
   * Seconds since this origin last read and applied everything the
   * invalidation topic held for it: other regions' purges it may not have applied yet are at
   * most this old, plus their own forwarding delay. Null without Kafka.
   */
  readonly behind_seconds: number | null;
  /**
   * Seconds the oldest purge of this region that Kafka has not acknowledged
   * yet has been waiting (0 when none); null when this replica does not
   * forward. Grows while this region cannot reach Kafka.
   */
  readonly forward_behind_seconds: number | null;
  /**
   * Per source region, the newest of its staleness canary writes applied
   * here (present for regions that run the canary): `behind_seconds` grows
   * while the link to that region is down, whichever side failed.
   */
  readonly sources: Record<string, CanarySourceReadiness>;
}

/** Cross-region wiring of one origin: the forwarder (when configured), the receive hooks, metrics and readiness. */
export interface Regions {
  readonly region: string;
  readonly forwarder: RegionForwarder | null;
  /** For the applier: another region's event was applied, `lagMs` after that region acknowledged it. */
  onRegionApplied(sourceRegion: string, lagMs: number): void;
  /** For the Kafka source: it has read and applied everything the topic held for it. */
  onCaughtUp(): void;
  /** For the applier: empties `namespaces` (all when null) here, for a reset from `sourceRegion`. */
  resetNamespaces(namespaces: readonly string[] | null, sourceRegion: string): Promise<void>;
  readiness(): RegionReadiness;
  start(): void;
  close(): Promise<void>;
}

/**
 * Builds the cross-region part of an origin from its config:
 *
 * - a {@link RegionForwarder} when `KAFKA_BROKERS` is set, forwarding is on
 *   (`REGION_FORWARD`, by default whenever `STRATA_REGION` is not `local`)
 *   and the store is Redis (the purge log is a Redis Stream);
 * - metrics: `strata_cross_region_lag_seconds{source_region}` (histogram:
 *   seconds from the acknowledgement in the source region to the purge here),
 *   `strata_cross_region_behind_seconds` (gauge: seconds since this origin
 *   last read and applied everything on the invalidation topic; alert when it grows),
 *   `strata_region_forwarder_leader`, `strata_region_forwarded_total`,
 *   `strata_region_forward_backlog_entries` and
 *   `strata_region_resets_total{direction,source_region}`;
 * - from other regions' staleness canaries ({@link CrossRegionCanary}):
 *   `strata_cross_region_canary_lag_seconds{source_region}` (histogram) and
 *   `strata_cross_region_source_behind_seconds{source_region}` (gauge:
 *   seconds since the newest canary write of that region applied here was
 *   acknowledged there; it grows while the link is down, alert on it), and
 *   `strata_region_forward_behind_seconds` on the forwarding replica (gauge:
 *   age of the oldest purge of this region Kafka has not acknowledged);
 * - the reset receiver: flushes each named namespace through
 *   {@link CacheService.flush} (its version goes up in this region's store,
 *   then this region's purge log tells its replicas and edges).
 */
export function regionsFromConfig(
  config: OriginConfig,
  deps: {
    service: CacheService;
    redisClient: Redis | Cluster | undefined;
    registry: Registry;
    logger: Logger;
    /**
     * The region's purge log as this replica tails it: other regions' canary
     * purges are seen here by every replica, whichever replica's consumer
     * applied them (the region's consumers split the topic's partitions).
     */
    bus?: Pick<PurgeBus, 'observe'>;
    now?: () => number;
  },
): Regions {
  const now = deps.now ?? Date.now;
  const region = config.STRATA_REGION;
  const { registry, logger, service } = deps;
  const connection = kafkaConnectionFromConfig(config);
  const startedAt = now();
  let caughtUpAt = 0;

  const lag = new Histogram({
    name: 'strata_cross_region_lag_seconds',
    help: 'Seconds from a change acknowledged in another region to its purge applied here, by source region.',
    labelNames: ['source_region'] as const,
    buckets: crossRegionLagBuckets,
    registers: [registry],
  });
  const resets = new Counter({
    name: 'strata_region_resets_total',
    help: 'Region-wide resets: sent by this region, or received from source_region and applied here.',
    labelNames: ['direction', 'source_region'] as const,
    registers: [registry],
  });
  const canaryLag = new Histogram({
    name: 'strata_cross_region_canary_lag_seconds',
    help: 'Seconds from a staleness canary write acknowledged in another region to its purge reaching this region log, as this replica relays it, by source region.',
    labelNames: ['source_region'] as const,
    buckets: crossRegionLagBuckets,
    registers: [registry],
  });
  const canary = new CrossRegionCanary({
    now,
    onLag: (source, ms) => canaryLag.observe({ source_region: source }, ms / 1000),
  });
  const unobserve = deps.bus?.observe((message) => {
    // Entries that apply another region's purge carry its name and acknowledgement time (`ts`).
    const source = (message as { origin_region?: unknown }).origin_region;
    if (typeof source === 'string' && source !== region)
      canary.observe(source, { namespace: message.namespace, timestamp: message.ts });
  });
  new Gauge({
    name: 'strata_cross_region_source_behind_seconds',
    help: 'Seconds since the newest staleness canary write of source_region applied here was acknowledged there; grows while the link is down.',
    labelNames: ['source_region'] as const,
    registers: [registry],
    collect() {
      for (const source of canary.sources()) this.set({ source_region: source }, canary.behindSeconds(source) ?? 0);
    },
  });
  new Gauge({
    name: 'strata_cross_region_behind_seconds',
    help: 'Seconds since this origin last read and applied everything the invalidation topic held for it (other regions purges may be this late).',
    registers: [registry],
    collect() {
      if (connection) this.set((now() - (caughtUpAt || startedAt)) / 1000);
    },
  });

  let forwarder: RegionForwarder | null = null;
  const forwarding = config.REGION_FORWARD ?? region !== 'local';
  if (connection && forwarding && deps.redisClient) {
    const leaderGauge = new Gauge({
      name: 'strata_region_forwarder_leader',
      help: 'Whether this replica forwards its region purges to Kafka now (1) or waits for the lease (0).',
      registers: [registry],
    });
    const forwarded = new Counter({
      name: 'strata_region_forwarded_total',
      help: 'Purges of this region forwarded to the invalidation topic (Kafka acknowledged them).',
      registers: [registry],
    });
    const replicaId = config.ORIGIN_ID ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const kafka = kafkaClient(connection, {
      logger,
      connectionTimeoutMs: 3_000,
      retry: { initialRetryTime: 200, maxRetryTime: 3_000, retries: 5 },
    });
    const f = new RegionForwarder({
      client: deps.redisClient,
      logKey: config.PURGE_LOG_KEY,
      region,
      replicaId,
      // Idempotent (KIP-98): a retried send is written once, and one request in flight keeps the log's order
      // per producer; a key with a send in flight waits behind it on the same one (REGION_FORWARD_PRODUCERS).
      producers: Array.from({ length: config.REGION_FORWARD_PRODUCERS }, () =>
        kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false }),
      ),
      topic: config.KAFKA_INVALIDATION_TOPIC,
      leaseMs: config.REGION_FORWARD_LEASE_MS,
      logger,
      events: {
        onLeadership: (leader) => leaderGauge.set(leader ? 1 : 0),
        onForwarded: (count) => forwarded.inc(count),
        onReset: () => resets.inc({ direction: 'sent', source_region: region }),
        onError: (error, retryInMs) => logger.warn({ err: error, retryInMs }, 'region forwarder failed; retrying'),
      },
    });
    forwarder = f;
    new Gauge({
      name: 'strata_region_forward_behind_seconds',
      help: 'Seconds the oldest purge of this region not yet acknowledged by Kafka has waited (forwarding replica; 0 elsewhere).',
      registers: [registry],
      collect() {
        this.set(unforwardedSeconds(f.status(), now()) ?? 0);
      },
    });
    new Gauge({
      name: 'strata_region_forward_backlog_entries',
      help: 'Entries of this region purge log not yet acknowledged by Kafka (read from Redis by every replica).',
      registers: [registry],
      async collect() {
        const backlog = await f.backlog();
        if (backlog !== null) this.set(backlog);
      },
    });
  }

  return {
    region,
    forwarder,
    onRegionApplied(sourceRegion, lagMs) {
      lag.observe({ source_region: sourceRegion }, lagMs / 1000);
    },
    onCaughtUp() {
      caughtUpAt = now();
    },
    async resetNamespaces(namespaces, sourceRegion) {
      let targets = namespaces;
      if (targets === null) {
        // Unknown: every namespace this origin has served since it started or that was ever flushed.
        targets = [...new Set([...service.counters.namespaces(), ...(await service.namespaces.all()).keys()])];
        logger.warn(
          { sourceRegion, namespaces: targets },
          'region reset without a namespace list: flushing every namespace this origin knows',
        );
      }
      for (const namespace of targets) {
        // A flush: the namespace's version goes up, so every entry written before is gone here and at the edges.
        await service.flush(namespace, `region:${sourceRegion}`, sourceRegion);
      }
      resets.inc({ direction: 'received', source_region: sourceRegion });
    },
    readiness() {
      return {
        name: region,
        forwarder: forwarder ? forwarder.status().leader : null,
        behind_seconds: connection ? Math.round((now() - (caughtUpAt || startedAt)) / 100) / 10 : null,
        forward_behind_seconds: forwarder ? unforwardedSeconds(forwarder.status(), now()) : null,
        sources: canary.readiness(),
      };
    },
    start() {
      forwarder?.start();
    },
    async close() {
      unobserve?.();
      await forwarder?.close();
    },
  };
}

/** Seconds the oldest unforwarded purge has waited (0.1 s steps), 0 when none; null when this replica does not forward. */
function unforwardedSeconds(status: ForwarderStatus, nowMs: number): number | null {
  if (!status.leader) return null;
  return status.unforwardedSince === 0 ? 0 : Math.round(Math.max(0, nowMs - status.unforwardedSince) / 100) / 10;
}
