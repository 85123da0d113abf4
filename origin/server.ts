import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { getRequestListener } from '@hono/node-server';
import pino, { type Logger } from 'pino';
import { requestTimeouts } from '../platform/node/request-timeouts.ts';
import { authConfigured, authOptionsFromConfig, createVerifier } from '../shared/auth.ts';
import { type OriginConfig, purgeHeartbeatMs } from '../shared/config.ts';
import { parseKeyring } from '../shared/crypto.ts';
import { pinoRequestLog } from '../shared/request-log.ts';
import { isTracingEnabled } from '../shared/tracing.ts';
import { createOriginApp } from './app.ts';
import { CacheService } from './cache-service.ts';
import { type HubEvents, hubEventsFromConfig } from './events/from-config.ts';
import { fastReadListener } from './fast-read.ts';
import { createGrpcHandler, rpcPathPrefix } from './grpc/handler.ts';
import { listenSamePort } from './grpc/same-port.ts';
import type { HubConsumer } from './hub/consumer.ts';
import { hubFromConfig } from './hub/from-config.ts';
import { invalidationSourceFromConfig } from './invalidation/from-config.ts';
import type { InvalidationSource } from './invalidation/source.ts';
import { memoryJobStore, redisJobStore } from './jobs/job-store.ts';
import { WarmJobs } from './jobs/warm-jobs.ts';
import { warmMetrics } from './jobs/warm-metrics.ts';
import { WarmOnStart } from './jobs/warm-on-start.ts';
import { loadCacheProfiles } from './lifecycle/profiles.ts';
import { lockMetrics } from './locks/lock-metrics.ts';
import { LockService, lockStoreFor } from './locks/lock-service.ts';
import { originMetrics } from './metrics.ts';
import { NamespaceRegistry } from './namespaces/registry.ts';
import { type FootprintReader, NamespaceReports } from './namespaces/report.ts';
import { memoryNamespaceVersions } from './namespaces/versions.ts';
import { observe } from './observability.ts';
import type { PurgeBus, PurgeInput } from './purge/bus.ts';
import { type CanaryReading, StalenessCanary } from './purge/canary.ts';
import { purgeBusFromConfig, resetReasonClass } from './purge/from-config.ts';
import { RedisStreamPurgeBus } from './purge/redis-stream-bus.ts';
import { type Regions, regionsFromConfig } from './regions/regions.ts';
import { type Env, Reloader, type ReloadResult } from './reload.ts';
import { registerResilienceMetrics } from './resilience-metrics.ts';
import { traceRpc } from './rpc-tracing.ts';
import { checkStoreAtStart } from './startup.ts';
import { memoryStore } from './store/memory.ts';
import { passThroughStore } from './store/pass-through.ts';
import { redisFootprint, redisNamespaceVersions, startRedisReclaimer } from './store/redis-namespaces.ts';
import { resilientRedisFromConfig } from './store/resilient-from-config.ts';
import type { TieredStore } from './store/store.ts';

/** A running origin. */
export interface RunningOrigin {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  readonly service: CacheService;
  /** Where acknowledged changes are published and edges subscribe. */
  readonly bus: PurgeBus;
  readonly store: TieredStore;
  /** Kafka consumer when `KAFKA_BROKERS` is set, else the in-process source (docs/kafka.md). */
  readonly invalidations: InvalidationSource;
  /** Cross-region forwarding and receiving (docs/regions.md). */
  readonly regions: Regions;
  /** The Message Hub consumer when `HUB_ENABLED=true` (docs/message-hub.md), else null. */
  readonly hub: HubConsumer | null;
  /** Item events published and commands obeyed on Kafka (`HUB_EVENTS_ENABLED`, docs/message-hub.md); null when off. */
  readonly hubEvents: HubEvents | null;
  /**
   * Re-reads the run-time configuration (`POST /api/v1/reload`, SIGHUP).
   * @throws CacheError CACHE_004 naming the invalid variable; the old configuration stays.
   */
  reload(): Promise<ReloadResult>;
  /** Stops consuming invalidations (commits, leaves the group), stops accepting, ends purge streams, closes the store. */
  close(): Promise<void>;
}

/**
 * Picks the store the config names: Redis Cluster (`REDIS_CLUSTER_NODES`),
 * Sentinel (`REDIS_SENTINELS`) or standalone (`REDIS_URL`), each behind the
 * breaker and local fallback tier;
 * else the embedded memory store.
 */
export function storeFromConfig(
  config: OriginConfig,
  onError?: (operation: string, error: unknown) => void,
  writeBackPurges?: (purge: PurgeInput) => Promise<unknown>,
): TieredStore {
  const redis = resilientRedisFromConfig(config, onError, writeBackPurges);
  if (redis) return redis;
  const memory = memoryStore({ maxBytes: config.MEMORY_STORE_MAX_BYTES, policy: config.EVICTION_POLICY });
  return passThroughStore(memory, memory);
}

/**
 * Wires an origin from its config and listens on `ORIGIN_HOST:ORIGIN_PORT`
 * (port 0 picks a free one): REST over HTTP/1.1 and h2c, and the gRPC,
 * gRPC-web and Connect API (`origin/grpc/`, docs/grpc.md) on the same port.
 * Used by `origin/main.ts`, `npm start` and tests.
 */
export async function startOrigin(
  config: OriginConfig,
  options: {
    logger?: Logger;
    store?: TieredStore;
    /** The environment a reload reads (entry points: `process.env` with `STRATA_CONFIG_FILE`); absent = a reload changes nothing. */
    reloadEnv?: () => Promise<Env>;
    /** Tests: false serves every REST request through the Hono app (default true: the GET fast path in front). */
    fastRead?: boolean;
    /** Tests: told of each GET the fast path answered itself. */
    onFastRead?: () => void;
  } = {},
): Promise<RunningOrigin> {
  const authOptions = authOptionsFromConfig(config);
  if (config.NODE_ENV === 'production' && !authConfigured(authOptions)) {
    throw new Error(
      'NODE_ENV=production needs AUTH_JWT_SECRET or AUTH_JWKS_URL: refusing to serve without authentication; set one of them (docs/security.md)',
    );
  }
  const auth = createVerifier(authOptions);
  const keyring = config.ENCRYPTION_KEYS ? await parseKeyring(config.ENCRYPTION_KEYS) : null;
  if (config.ENCRYPTED_NAMESPACES?.length && !keyring) throw new Error('ENCRYPTED_NAMESPACES needs ENCRYPTION_KEYS');
  const logger = options.logger ?? pino({ level: config.LOG_LEVEL, name: 'strata-origin' });
  // The bus needs the store's connection and the store's write-back logs purges on the bus: bound once both exist.
  let bus: PurgeBus | undefined;
  const store =
    options.store ??
    storeFromConfig(
      config,
      // Per-call failures are debug: during an outage every request fails, and the breaker's transitions say it once.
      (operation, error) => logger.debug({ operation, err: error }, 'redis call failed'),
      async (purge) => {
        if (!bus) throw new Error('purge log not open yet');
        return await bus.publish(purge);
      },
    );
  if (!options.store && (config.REDIS_CLUSTER_NODES || config.REDIS_SENTINELS || config.REDIS_URL)) {
    const variable = config.REDIS_CLUSTER_NODES
      ? 'REDIS_CLUSTER_NODES'
      : config.REDIS_SENTINELS
        ? 'REDIS_SENTINELS'
        : 'REDIS_URL';
    await checkStoreAtStart(store, { variable, required: config.REDIS_REQUIRED_AT_START, logger }).catch(
      async (error: unknown) => {
        await store.close();
        throw error;
      },
    );
  }
  // Counters exist before the bus reports into them; the bus exists before the gauges read it.
  let metrics: ReturnType<typeof originMetrics> | undefined;
  bus = await purgeBusFromConfig(config, store, {
    logger,
    events: {
      onRelayed: () => metrics?.purgeLogRelayed.inc(),
      onReset: (reason) => {
        metrics?.purgeLogResets.inc({ reason: resetReasonClass(reason) });
        logger.warn({ reason }, 'purge log reset sent to edges');
      },
      onMalformed: (id, reason) => {
        metrics?.purgeLogMalformed.inc();
        logger.warn({ id, reason }, 'skipped a malformed purge log entry');
      },
      onTailError: (error, retryInMs) => logger.warn({ err: error, retryInMs }, 'purge log tail failed; retrying'),
      onIntentRecovered: (intentId, scope) => {
        metrics?.purgeIntentsRecovered.inc();
        logger.warn(
          { intentId, namespace: scope.namespace, keys: scope.keys.length },
          "recovered a purge intent left open (its writer crashed or failed): keys purged at the store's versions",
        );
      },
      onIntentRecoveryFailed: (intentId, error) =>
        logger.debug({ intentId, err: error }, 'purge intent recovery failed; retrying'),
    },
  });
  const logBus = bus;
  const { usage } = store;
  metrics = originMetrics({
    connectedEdges: () => logBus.subscribers,
    storeEntries: usage ? () => usage.size : undefined,
    purgeLog: logBus instanceof RedisStreamPurgeBus ? () => logBus.lag() : undefined,
  });
  const { resilience } = store;
  if (resilience) {
    registerResilienceMetrics(metrics.registry, resilience);
    resilience.breaker.onStateChange((state) =>
      logger.warn({ breaker: state, dirty: resilience.local.dirtyCount }, 'redis circuit breaker changed state'),
    );
  }
  // Namespace versions live beside the entries: a bookkeeping hash on Redis, in process for the embedded store.
  const namespaces = new NamespaceRegistry(
    store.redisClient ? redisNamespaceVersions(store.redisClient) : memoryNamespaceVersions(),
    bus,
  );
  await namespaces.loadOrRetry(1_000, (error) =>
    logger.warn({ err: error }, 'could not read namespace versions yet; retrying'),
  );
  const service = new CacheService({
    store,
    bus,
    namespaces,
    defaultTtlSeconds: config.CACHE_DEFAULT_TTL,
    maxValueBytes: config.MAX_VALUE_BYTES,
    keyring,
    encryptedNamespaces: new Set(config.ENCRYPTED_NAMESPACES ?? []),
    ...(config.STRATA_FAULT ? { fault: config.STRATA_FAULT } : {}),
    compressMinBytes: config.COMPRESS_MIN_BYTES,
    leaseMs: config.LEASE_TTL_MS,
    ...(config.CACHE_PROFILES ? { profiles: loadCacheProfiles(config.CACHE_PROFILES) } : {}),
    xfetchBeta: config.XFETCH_BETA,
    onCompressed: (before, after) => {
      metrics.compressionInputBytes.inc(before);
      metrics.compressionOutputBytes.inc(after);
    },
    onStoreError: (operation, error) => {
      metrics.storeErrors.inc({ operation });
      logger.warn({ operation, err: error }, 'store call failed');
    },
  });
  // Intents a crashed writer left open are recovered through the service (evict at the store, log the purge).
  bus.recoverIntentsWith?.((scope, intentId) => service.recoverIntent(scope, intentId));
  const canary =
    config.PURGE_CANARY_SECONDS > 0
      ? new StalenessCanary({
          intervalSeconds: config.PURGE_CANARY_SECONDS,
          write: (namespace, key, value) =>
            service.set(namespace, key, { value, contentType: 'text/plain', ttlSeconds: 60 }),
          onLag: (ms) => metrics.purgeCanaryLag.observe(ms / 1000),
          onApplied: (edgeId, ms) => metrics.purgeCanaryApplied.observe({ edge: edgeId }, ms / 1000),
          onForget: (edgeId) => metrics.purgeCanaryApplied.remove({ edge: edgeId }),
          onError: (error) => logger.warn({ err: error }, 'staleness canary write failed'),
        })
      : null;
  // observe, not subscribe: a subscriber is an edge, and `strata_connected_edges` counts those.
  bus.observe((message) => metrics.purges.inc({ action: message.action }));
  const observability = observe({ config, metrics, store, logger });
  const regions = regionsFromConfig(config, {
    service,
    redisClient: bus instanceof RedisStreamPurgeBus ? store.redisClient : undefined,
    registry: metrics.registry,
    logger,
    bus,
  });
  const invalidations = invalidationSourceFromConfig(config, { service, logger, metrics, regions });
  const reloader = new Reloader({
    initial: config,
    env: options.reloadEnv,
    service,
    logger,
  });
  const hubEvents = hubEventsFromConfig(config, {
    service,
    reloader,
    bus,
    redisClient: bus instanceof RedisStreamPurgeBus ? store.redisClient : undefined,
    auth,
    registry: metrics.registry,
    logger,
  });
  // Flushed entries on Redis are unlinked in the background, on a connection of the reclaimer's own, at most
  // 1,000 calls a second, and only for flushes no replica has reclaimed yet.
  const reclaimer = store.redisClient
    ? startRedisReclaimer({
        client: store.redisClient,
        floors: () => namespaces.floors(),
        callsPerSecond: 1_000,
        onError: (error) => logger.debug({ err: error }, 'reclaim of flushed entries failed; retrying'),
      })
    : null;
  const reports = new NamespaceReports(service, footprintReader(store, config.MEMORY_STORE_MAX_BYTES));
  const locks = new LockService({
    store: lockStoreFor(store, (operation, error) => logger.debug({ operation, err: error }, 'lock call failed')),
    metrics: lockMetrics(metrics.registry),
    maxWaitSeconds: config.LOCK_MAX_WAIT_SECONDS,
  });
  // Warm jobs keep their state beside the entries, so any replica answers for any job.
  const jobStore = store.redisClient ? redisJobStore(store.redisClient) : memoryJobStore();
  // Unique per started origin (two may share a process in tests): it owns leases and names a job's runner.
  const replica = `${config.ORIGIN_ID ?? hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const allowedOrigins = new Set(config.WARM_ALLOWED_ORIGINS ?? []);
  const warmEvents = warmMetrics(metrics.registry);
  const warmJobs = new WarmJobs({
    service,
    store: jobStore,
    replica,
    allowedOrigins,
    maxValueBytes: config.MAX_VALUE_BYTES,
    events: {
      ...warmEvents,
      onFinished: (job) =>
        logger.info(
          { job: job.id, namespace: job.namespace, state: job.state, done: job.done, failed: job.failed },
          'warm job finished',
        ),
    },
  });
  const warmOnStart = config.WARM_ON_START
    ? new WarmOnStart({
        sources: config.WARM_ON_START,
        jobs: warmJobs,
        store: jobStore,
        region: config.STRATA_REGION,
        replica,
        deadlineSeconds: config.WARM_ON_START_DEADLINE_SECONDS,
        onError: (error) => logger.warn({ err: error }, 'start-up warming failed'),
      })
    : undefined;
  // The hub answers with the same service, reports, reloader and verifier as REST and gRPC.
  const hub = hubFromConfig(config, {
    service,
    reports,
    reloader,
    store,
    verifier: auth,
    logger,
    registry: metrics.registry,
  });
  const app = createOriginApp({
    service,
    warm: { jobs: warmJobs, allowedOrigins, onStart: warmOnStart },
    // Edges are served through the canary's wrapper, which times each hand-off of a canary purge.
    bus: canary ? canary.instrument(bus) : bus,
    ...(canary
      ? {
          readyDetail: () => ({ canary: canaryDetail(canary.reading) }),
          onPurgeApplied: (edgeId: string, position: string) => canary.report(edgeId, position),
        }
      : {}),
    locks,
    metrics,
    maxValueBytes: config.MAX_VALUE_BYTES,
    heartbeatMs: purgeHeartbeatMs(config),
    onUnexpectedError: (error) => logger.error({ err: error }, 'unexpected error'),
    log: pinoRequestLog(logger),
    auth,
    invalidations: invalidations.kind === 'in-process' ? invalidations : undefined,
    regions,
    dashboard: {
      stats: observability.stats,
      sampleSeconds: config.STATS_SAMPLE_SECONDS,
      evictionPolicy: config.EVICTION_POLICY,
    },
    reports,
    reloader,
  });
  const rpc = createGrpcHandler({
    service,
    locks,
    reports,
    reloader,
    invalidationKind: invalidations.kind,
    metrics,
    maxValueBytes: config.MAX_VALUE_BYTES,
    onUnexpectedError: (error) => logger.error({ err: error }, 'unexpected error'),
    auth,
    log: pinoRequestLog(logger),
    unaryFastPath: config.GRPC_UNARY_FAST_PATH && !isTracingEnabled(),
  });
  const restListener = getRequestListener(app.fetch, { hostname: config.ORIGIN_HOST });
  const server = await listenSamePort({
    // Plain GET hits are answered in front of Hono (`fast-read.ts`); with tracing on, every request opens its span there.
    rest:
      options.fastRead === false || isTracingEnabled()
        ? restListener
        : fastReadListener({
            service,
            metrics,
            log: pinoRequestLog(logger),
            auth,
            fallback: restListener,
            onAnswered: options.onFastRead,
          }),
    rpc: traceRpc(rpc, isTracingEnabled()),
    isRpcPath: (path) => path.startsWith(rpcPathPrefix),
    port: config.ORIGIN_PORT,
    host: config.ORIGIN_HOST,
    http1Options: requestTimeouts(config.REQUEST_TIMEOUT_MS),
  });
  server.http1.keepAliveTimeout = 65_000;
  const { port } = server;
  const url = `http://${config.ORIGIN_HOST}:${port}`;
  logger.info({ url, store: store.kind, purgeLog: bus.health().position }, 'origin listening');
  await invalidations.start();
  await hub?.start();
  regions.start();
  hubEvents?.start();
  observability.start(port);
  canary?.start();
  void warmOnStart?.start();
  return {
    url,
    port,
    service,
    bus,
    store,
    invalidations,
    regions,
    hub,
    hubEvents,
    reload: () => reloader.reload(),
    async close() {
      canary?.stop();
      warmOnStart?.stop();
      await warmJobs.stopAll();
      namespaces.close();
      await reclaimer?.stop();
      await observability.stop();
      // Release the forwarding lease first, so a peer takes over at once.
      await regions.close();
      await hubEvents?.close();
      // Stop consuming first: the batch in hand still reaches the purge bus and is committed before edges are cut.
      await hub?.stop();
      await invalidations.stop();
      // Purge streams never end by themselves; close() cuts every connection so it returns.
      await server.close();
      await bus.close();
      await store.close();
    },
  };
}

/** The last canary probe as `/ready` shows it (snake_case, ms); null before the first. */
function canaryDetail(reading: CanaryReading | null): Record<string, unknown> | null {
  if (!reading) return null;
  return {
    at: new Date(reading.atMs).toISOString(),
    write_ms: reading.writeMs,
    edges: reading.edges,
    delivered: reading.delivered,
    max_lag_ms: reading.maxLagMs,
    error: reading.error,
    applied: reading.applied.map((e) => ({
      edge_id: e.edgeId,
      lag_ms: e.lagMs,
      behind_ms: Math.round(e.behindMs),
      lagging: e.lagging,
    })),
  };
}

/** The store's footprint for management stats: Redis `INFO`, or the embedded store's usage and budget. */
function footprintReader(store: TieredStore, memoryLimitBytes: number): FootprintReader {
  const { redisClient, usage } = store;
  if (redisClient) {
    return async () => {
      const f = await redisFootprint(redisClient);
      return {
        kind: 'redis',
        memory_bytes: f.memoryBytes,
        memory_limit_bytes: f.limitBytes,
        keys: f.keys,
        evictions: f.evictions,
      };
    };
  }
  return async () => ({
    kind: store.kind,
    memory_bytes: usage?.bytes ?? 0,
    memory_limit_bytes: usage ? memoryLimitBytes : null,
    keys: usage?.size ?? 0,
    evictions: usage?.evictions ?? 0,
  });
}
