import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { OriginConfig } from '../../shared/config.ts';
import type { TieredStore } from '../store/store.ts';
import type { PurgeBus } from './bus.ts';
import { InProcessPurgeBus } from './in-process-bus.ts';
import { type RedisStreamBusEvents, RedisStreamPurgeBus } from './redis-stream-bus.ts';

/**
 * Picks the purge bus the config and store call for: the region's log on
 * the store's Redis (`RedisStreamPurgeBus`) when the store is Redis or Redis
 * Cluster and `PURGE_BUS=auto`; else this process's in-process log (the
 * memory store, or `PURGE_BUS=none` for a deliberate single replica).
 * Checks Redis's `maxmemory-policy` once and warns when it may evict the log.
 */
export async function purgeBusFromConfig(
  config: OriginConfig,
  store: TieredStore & { readonly redisClient?: Redis | Cluster },
  options: { logger: Logger; events?: RedisStreamBusEvents },
): Promise<PurgeBus> {
  const client = store.redisClient;
  if (!client || config.PURGE_BUS === 'none') {
    return new InProcessPurgeBus({ retainedEntries: config.PURGE_BUFFER_SIZE });
  }
  void warnOnEvictingPolicy(client, options.logger);
  return await RedisStreamPurgeBus.open({
    client,
    retainedEntries: config.PURGE_BUFFER_SIZE,
    key: config.PURGE_LOG_KEY,
    retentionSeconds: config.PURGE_LOG_RETENTION_SECONDS,
    waitReplicas: config.PURGE_LOG_WAIT_REPLICAS ?? null,
    waitTimeoutMs: config.PURGE_LOG_WAIT_TIMEOUT_MS,
    intentTimeoutMs: config.PURGE_INTENT_TIMEOUT_MS,
    intentAppendTimeoutMs: config.REDIS_CALL_TIMEOUT_MS,
    events: options.events,
  });
}

/**
 * Warns (one line) when a Redis node may evict keys without a TTL
 * (`maxmemory-policy allkeys-*`): the purge log and other bookkeeping keys
 * could vanish, which resets every edge. `volatile-lfu`, with every cache
 * entry carrying a TTL, evicts only entries (docs/operating.md).
 */
export async function warnOnEvictingPolicy(client: Redis | Cluster, logger: Logger): Promise<void> {
  try {
    const nodes = 'isCluster' in client && client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
    for (const node of nodes) {
      const reply = (await node.config('GET', 'maxmemory-policy')) as string[];
      const policy = reply[1] ?? '';
      if (policy.startsWith('allkeys-')) {
        logger.warn(
          { maxmemoryPolicy: policy, node: `${node.options.host}:${node.options.port}` },
          'Redis maxmemory-policy may evict the purge log and bookkeeping keys: use volatile-lfu with TTLs on cache entries',
        );
        return;
      }
    }
  } catch (error) {
    logger.debug({ err: error }, 'could not read maxmemory-policy');
  }
}

/** A metric label for a reset reason: a few fixed classes, never the free text. */
export function resetReasonClass(reason: string): string {
  if (/incarnation/.test(reason)) return 'incarnation';
  if (/lost/.test(reason)) return 'lost';
  if (/skipped|older|trimmed/.test(reason)) return 'gap';
  if (/format version/.test(reason)) return 'format';
  return 'other';
}
