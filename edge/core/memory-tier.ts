import {
  createEvictionCache,
  defaultEvictionPolicy,
  type EvictionPolicy,
  evictionCounts,
} from '../../shared/eviction/index.ts';
import { storageKey } from '../../shared/keys.ts';
import { keepUntilMs } from '../../shared/lifecycle.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';
import type { EdgeEntry, EdgeTier } from './tier.ts';

/** Bytes counted per entry beyond key and value (object, map slot, strings). */
export const edgeEntryOverheadBytes = 160;

export interface MemoryTierOptions {
  /** Byte budget (`EDGE_MAX_BYTES`): values + keys + overhead. */
  maxBytes: number;
  /** Unix-ms clock; tests pass a fake one. */
  now?: () => number;
  /** Which entries go first when the budget is full (`EVICTION_POLICY`); default S3-FIFO. */
  policy?: EvictionPolicy;
}

/**
 * The in-memory near-user tier: a byte-bounded cache of the configured
 * eviction policy (shared/eviction/) whose entries are kept until their
 * `expiresAtMs` plus the longer grace window (`shared/lifecycle.ts`). Values larger than the whole budget are not kept.
 */
export function memoryTier(options: MemoryTierOptions): EdgeTier {
  const now = options.now ?? Date.now;
  const evicted = evictionCounts();
  const cache = createEvictionCache<EdgeEntry>(options.policy ?? defaultEvictionPolicy, {
    maxBytes: options.maxBytes,
    now,
    // Budget pressure and expiry count; deletes (purges) and overwrites have other reasons.
    onDispose: (_entry, _key, reason) => evicted.count(reason),
  });

  const dropIfOlder = (k: string, version: number): boolean => {
    const entry = cache.peek(k);
    if (entry && entry.version < version) return cache.delete(k);
    return false;
  };

  /** `entry` unless past its grace windows, when it is dropped. */
  const kept = (k: string, entry: EdgeEntry | undefined): EdgeEntry | undefined => {
    if (!entry) return undefined;
    if (keepUntilMs(entry) <= now()) {
      cache.delete(k);
      return undefined;
    }
    return entry;
  };

  return {
    get size() {
      return cache.size;
    },
    get bytes() {
      return cache.bytes;
    },
    get evictions() {
      return evicted.counts.evict;
    },
    get evictionsByReason() {
      return evicted.counts;
    },
    policy: cache.policy,
    get(namespace, key) {
      const k = storageKey(namespace, key);
      return kept(k, cache.get(k));
    },
    peek(namespace, key) {
      const k = storageKey(namespace, key);
      return kept(k, cache.peek(k));
    },
    set(entry) {
      const ttl = keepUntilMs(entry) - now();
      if (ttl <= 0) return false;
      const k = storageKey(entry.namespace, entry.key);
      const existing = cache.peek(k);
      if (existing && existing.version > entry.version) return false;
      cache.set(k, entry, { sizeBytes: entry.value.byteLength + k.length * 2 + edgeEntryOverheadBytes, ttlMs: ttl });
      return cache.has(k);
    },
    delete(namespace, key) {
      cache.delete(storageKey(namespace, key));
    },
    purge(message: PurgeMessage) {
      let removed = 0;
      for (const key of message.keys) if (dropIfOlder(storageKey(message.namespace, key), message.version)) removed++;
      if (message.action === 'flush') {
        // A namespace flush: every copy of the namespace below the new namespace version goes.
        for (const [k, entry] of cache.entries()) {
          if (entry.namespace === message.namespace && dropIfOlder(k, message.version)) removed++;
        }
      } else if (message.tags.length > 0 || message.prefix !== null) {
        // The tier is small (a byte budget of recent entries); walking it is cheaper than an index on every fill.
        const tags = new Set(message.tags);
        const prefix = message.prefix === null ? null : storageKey(message.namespace, message.prefix);
        for (const [k, entry] of cache.entries()) {
          if (entry.namespace !== message.namespace) continue;
          const hit = (prefix !== null && k.startsWith(prefix)) || entry.tags.some((t) => tags.has(t));
          if (hit && dropIfOlder(k, message.version)) removed++;
        }
      }
      return removed;
    },
    clear() {
      cache.clear();
    },
  };
}
