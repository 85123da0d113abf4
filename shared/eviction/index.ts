import { LfuCache } from './lfu.ts';
import { LruCache } from './lru.ts';
import type { EvictionCache, EvictionCacheOptions, EvictionPolicy } from './policy.ts';
import { S3FifoCache } from './s3fifo.ts';

export type {
  DisposeReason,
  EvictionCache,
  EvictionCacheOptions,
  EvictionCounts,
  EvictionPolicy,
  EvictionReason,
  SetOptions,
} from './policy.ts';
export { evictionCounts, evictionPolicies } from './policy.ts';

/**
 * The default policy: S3-FIFO, which had the highest read hit ratio on the
 * real trace at every budget measured (docs/benchmarks.md, section r).
 */
export const defaultEvictionPolicy: EvictionPolicy = 's3fifo';

/** A byte-budgeted cache with the eviction policy `policy` (LFU with dynamic aging). */
export function createEvictionCache<V>(policy: EvictionPolicy, options: EvictionCacheOptions<V>): EvictionCache<V> {
  switch (policy) {
    case 'lru':
      return new LruCache(options);
    case 'lfu':
      return new LfuCache(options);
    case 's3fifo':
      return new S3FifoCache(options);
  }
}
