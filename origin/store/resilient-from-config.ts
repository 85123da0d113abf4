import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import type { OriginConfig } from '../../shared/config.ts';
import { RedisBreaker } from '../breaker.ts';
import { connectionReady } from './connection-ready.ts';
import { LocalTier } from './local-tier.ts';
import { redisStore } from './redis.ts';
import { redisClusterStore } from './redis-cluster.ts';
import type { StrataCommands } from './redis-commands.ts';
import { type ResilientStore, resilientStore } from './resilient.ts';
import { redisWriteBack } from './write-back.ts';

/** Milliseconds of origin-vs-Redis clock difference tolerated by write deadlines. */
export const clockSkewAllowanceMs = 500;

/** A store built from config, with its ioredis client (per-node health metrics read it). */
export type ConfiguredRedisStore = ResilientStore & { readonly redisClient: Redis | Cluster };

/**
 * Builds the Redis store the config names — Cluster when
 * `REDIS_CLUSTER_NODES` is set, else standalone `REDIS_URL` — wrapped in the
 * breaker and local fallback tier (`resilient.ts`), with the `BREAKER_*`,
 * `REDIS_*` and `LOCAL_TIER_*` settings of `shared/config.ts`.
 *
 * @returns null when neither variable is set (the embedded store applies).
 */
export function resilientRedisFromConfig(
  config: OriginConfig,
  onError?: (operation: string, error: unknown) => void,
): ConfiguredRedisStore | null {
  const driver = config.REDIS_CLUSTER_NODES
    ? redisClusterStore({
        nodes: config.REDIS_CLUSTER_NODES,
        password: config.REDIS_PASSWORD,
        tls: config.REDIS_TLS,
        ...(config.REDIS_TLS_CA_FILE ? { tlsCa: readFileSync(config.REDIS_TLS_CA_FILE) } : {}),
        writeDeadlineMs: config.REDIS_CALL_TIMEOUT_MS + clockSkewAllowanceMs,
        onConnectionError: (error) => onError?.('connection', error),
      })
    : config.REDIS_URL
      ? redisStore({
          url: config.REDIS_URL,
          redis: config.REDIS_PASSWORD ? { password: config.REDIS_PASSWORD } : {},
          onConnectionError: (error) => onError?.('connection', error),
        })
      : null;
  if (!driver) return null;
  const store = resilientStore({
    inner: driver,
    writeBack: redisWriteBack(driver.client as typeof driver.client & StrataCommands),
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
