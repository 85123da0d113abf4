import { readFileSync } from 'node:fs';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { OriginConfig } from '../../shared/config.ts';
import { RedisBreaker } from '../breaker.ts';
import type { PurgeInput } from '../purge/bus.ts';
import { connectionReady } from './connection-ready.ts';
import { LocalTier } from './local-tier.ts';
import { redisStore } from './redis.ts';
import { redisClusterStore } from './redis-cluster.ts';
import type { StrataCommands } from './redis-commands.ts';
import { waitForReplicas } from './replica-wait.ts';
import { type ResilientStore, resilientStore } from './resilient.ts';
import type { Store } from './store.ts';
import { purgeLoggingWriteBack, redisWriteBack } from './write-back.ts';

/** Milliseconds of origin-vs-Redis clock difference tolerated by write deadlines. */
export const clockSkewAllowanceMs = 500;

/** A store built from config, with its ioredis client (per-node health metrics read it). */
export type ConfiguredRedisStore = ResilientStore & { readonly redisClient: Redis | Cluster };

/**
 * Reconnect delay in ms after `attempt` failed attempts (1-based):
 * `REDIS_RECONNECT_BASE_MS` doubled each time, capped at
 * `REDIS_RECONNECT_MAX_MS`. The driver reconnects forever; the breaker,
 * not the driver, decides when callers stop waiting for Redis.
 */
export function reconnectDelayMs(config: OriginConfig, attempt: number): number {
  return Math.min(
    config.REDIS_RECONNECT_BASE_MS * 2 ** Math.min(Math.max(attempt - 1, 0), 30),
    config.REDIS_RECONNECT_MAX_MS,
  );
}

/**
 * The ioredis connection settings every mode shares: `REDIS_CONNECT_TIMEOUT_MS`
 * (TCP/TLS connect) and the reconnect back-off of {@link reconnectDelayMs}.
 * Per-call time-outs and read retries are the breaker's (`REDIS_CALL_TIMEOUT_MS`,
 * `REDIS_READ_ATTEMPTS`), not ioredis's.
 */
export function redisConnectionOptions(config: OriginConfig): RedisOptions {
  return {
    connectTimeout: config.REDIS_CONNECT_TIMEOUT_MS,
    retryStrategy: (attempt) => reconnectDelayMs(config, attempt),
  };
}

/** Checks the Redis mode variables; throws an Error naming the conflict. */
function checkRedisMode(config: OriginConfig): void {
  const modes = [config.REDIS_CLUSTER_NODES && 'REDIS_CLUSTER_NODES', config.REDIS_SENTINELS && 'REDIS_SENTINELS'];
  if (modes.every(Boolean))
    throw new Error('invalid configuration: set REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both');
  if (Boolean(config.REDIS_SENTINELS) !== Boolean(config.REDIS_SENTINEL_MASTER)) {
    throw new Error('invalid configuration: REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together');
  }
  if (config.REDIS_CLUSTER_NODES && config.REDIS_WAIT_REPLICAS > 0) {
    throw new Error('invalid configuration: REDIS_WAIT_REPLICAS applies to standalone and Sentinel, not Cluster');
  }
}

/** The bare Redis driver a config names, and its ioredis client. */
export interface ConfiguredRedisDriver {
  /** The driver, behind the `WAIT` facade when `REDIS_WAIT_REPLICAS` > 0. */
  readonly store: Store;
  readonly client: Redis | Cluster;
}

/**
 * Builds the Redis driver the config names — Cluster when
 * `REDIS_CLUSTER_NODES` is set, Sentinel when `REDIS_SENTINELS` and
 * `REDIS_SENTINEL_MASTER` are (ioredis asks the sentinels for the master and
 * follows it through failover), else standalone `REDIS_URL` — with the
 * connection settings of {@link redisConnectionOptions}. With
 * `REDIS_WAIT_REPLICAS` > 0 each write waits for replicas (`replica-wait.ts`).
 *
 * @returns null when none of the three is set (the embedded store applies).
 * @throws Error when the mode variables conflict.
 */
export function redisDriverFromConfig(
  config: OriginConfig,
  onError?: (operation: string, error: unknown) => void,
): ConfiguredRedisDriver | null {
  checkRedisMode(config);
  const onConnectionError = (error: unknown) => onError?.('connection', error);
  const connection = redisConnectionOptions(config);
  const password = config.REDIS_PASSWORD ? { password: config.REDIS_PASSWORD } : {};
  if (config.REDIS_CLUSTER_NODES) {
    const driver = redisClusterStore({
      nodes: config.REDIS_CLUSTER_NODES,
      password: config.REDIS_PASSWORD,
      tls: config.REDIS_TLS,
      ...(config.REDIS_TLS_CA_FILE ? { tlsCa: readFileSync(config.REDIS_TLS_CA_FILE) } : {}),
      writeDeadlineMs: config.REDIS_CALL_TIMEOUT_MS + clockSkewAllowanceMs,
      connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
      cluster: { clusterRetryStrategy: (attempt) => reconnectDelayMs(config, attempt) },
      onConnectionError,
    });
    return { store: driver, client: driver.client };
  }
  const driver =
    config.REDIS_SENTINELS && config.REDIS_SENTINEL_MASTER
      ? redisStore({
          redis: {
            ...connection,
            ...password,
            sentinels: config.REDIS_SENTINELS.map((address) => {
              const colon = address.lastIndexOf(':');
              return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
            }),
            name: config.REDIS_SENTINEL_MASTER,
            sentinelRetryStrategy: (attempt) => reconnectDelayMs(config, attempt),
            // No `failoverDetector`: on +switch-master it disconnects the connector, and
            // when that lands while ioredis is already reconnecting (the usual case after
            // a crash) the reconnect rejects and the client ends for good ("Connection is
            // closed." forever; seen in the failover test with ioredis 5.11). A crashed or
            // demoted master closes our connection anyway, which makes ioredis ask again.
          },
          onConnectionError,
        })
      : config.REDIS_URL
        ? redisStore({ url: config.REDIS_URL, redis: { ...connection, ...password }, onConnectionError })
        : null;
  if (!driver) return null;
  const store =
    config.REDIS_WAIT_REPLICAS > 0
      ? waitForReplicas(driver, driver.client, {
          replicas: config.REDIS_WAIT_REPLICAS,
          timeoutMs: config.REDIS_WAIT_TIMEOUT_MS,
        })
      : driver;
  return { store, client: driver.client };
}

/**
 * Builds the Redis driver of {@link redisDriverFromConfig} wrapped in the
 * breaker and local fallback tier (`resilient.ts`), with the `BREAKER_*`,
 * `REDIS_*` and `LOCAL_TIER_*` settings of `shared/config.ts`.
 *
 * @returns null when no Redis is configured (the embedded store applies).
 * @throws Error when the mode variables conflict.
 */
export function resilientRedisFromConfig(
  config: OriginConfig,
  onError?: (operation: string, error: unknown) => void,
  /** Where replayed changes log their purges (the purge bus's `publish`); unset = not logged. */
  writeBackPurges?: (purge: PurgeInput) => Promise<unknown>,
): ConfiguredRedisStore | null {
  const driver = redisDriverFromConfig(config, onError);
  if (!driver) return null;
  const store = resilientStore({
    inner: driver.store,
    writeBack: writeBackPurges
      ? purgeLoggingWriteBack(redisWriteBack(driver.client as typeof driver.client & StrataCommands), writeBackPurges)
      : redisWriteBack(driver.client as typeof driver.client & StrataCommands),
    breaker: new RedisBreaker({
      threshold: config.BREAKER_THRESHOLD,
      windowMs: config.BREAKER_WINDOW_SECONDS * 1000,
      minRequests: config.BREAKER_MIN_REQUESTS,
      halfOpenAfterMs: config.BREAKER_HALF_OPEN_AFTER_MS,
      callTimeoutMs: config.REDIS_CALL_TIMEOUT_MS,
      readAttempts: config.REDIS_READ_ATTEMPTS,
    }),
    local: new LocalTier({
      maxBytes: config.LOCAL_TIER_MAX_BYTES,
      maxDirtyBytes: config.LOCAL_TIER_MAX_DIRTY_BYTES,
      policy: config.EVICTION_POLICY,
    }),
    recoveryIntervalMs: config.BREAKER_RECOVERY_INTERVAL_MS,
    ready: connectionReady(driver.client),
    onError,
  });
  return Object.assign(store, { redisClient: driver.client as Redis | Cluster });
}
