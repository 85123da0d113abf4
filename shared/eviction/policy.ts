/**
 * The eviction seam: one small byte-budgeted cache interface with one
 * implementation per policy (`lru.ts`, `lfu.ts`, `s3fifo.ts`). Runtime-free
 * (no `node:` imports) so the edge's core, the origin's embedded store and
 * its fallback tier all use the same code.
 */

/** The policies `EVICTION_POLICY` accepts. */
export const evictionPolicies = ['lru', 'lfu', 's3fifo'] as const;

/** One of {@link evictionPolicies}. */
export type EvictionPolicy = (typeof evictionPolicies)[number];

/**
 * Why an entry left the cache, passed to {@link EvictionCacheOptions.onDispose}:
 * - `evict`: dropped by the policy to stay within the byte budget;
 * - `expire`: its TTL had passed when an access or an eviction reached it;
 * - `delete`: removed by {@link EvictionCache.delete} or {@link EvictionCache.clear};
 * - `set`: replaced by a newer value for the same key (or by a value too large to keep).
 */
export type DisposeReason = 'evict' | 'expire' | 'delete' | 'set';

/** Options of {@link EvictionCache.set}. */
export interface SetOptions {
  /** Bytes this entry counts against the budget (value, key and any overhead the caller adds). */
  readonly sizeBytes: number;
  /** Milliseconds the entry lives from now on the cache's clock; absent = no expiry. */
  readonly ttlMs?: number;
}

/** Options shared by every policy's constructor. */
export interface EvictionCacheOptions<V> {
  /** Byte budget: the sum of the entries' `sizeBytes` never exceeds it once `set` returns. */
  readonly maxBytes: number;
  /** Clock in Unix ms (a fake one in tests); TTLs are checked against it. Default `Date.now`. */
  readonly now?: () => number;
  /** Called synchronously for every entry that leaves the cache, with the reason. */
  readonly onDispose?: (value: V, key: string, reason: DisposeReason) => void;
}

/**
 * A byte-budgeted key/value cache with per-entry TTL and a pluggable
 * eviction policy. Synchronous: it is an L1, nothing here blocks.
 *
 * Expiry is lazy: an entry past its TTL is never returned; it is dropped
 * (reason `expire`) when an access or the eviction sweep reaches it. No
 * operation scans the whole cache, so a TTL costs O(1) per entry; the price
 * is that an expired entry nobody asks for holds its bytes until eviction
 * reaches it, which the byte budget bounds anyway.
 */
export interface EvictionCache<V> {
  /** Which policy this is. */
  readonly policy: EvictionPolicy;
  /** The byte budget. */
  readonly maxBytes: number;
  /** Bytes counted now (expired entries not yet reached included). */
  readonly bytes: number;
  /** Entries held now (expired entries not yet reached included). */
  readonly size: number;
  /** The live value of `key`, counting as an access (the policy's hit). */
  get(key: string): V | undefined;
  /** The live value of `key` without counting an access. */
  peek(key: string): V | undefined;
  /** Whether `key` holds a live value; not an access. */
  has(key: string): boolean;
  /**
   * Stores `value` under `key`, evicting as the policy says until it fits.
   * Replacing a present key counts as an access to it.
   * @returns true when the value is held after the call (false when larger than the budget).
   */
  set(key: string, value: V, options: SetOptions): boolean;
  /** Removes `key` (reason `delete`). @returns whether a value was held. */
  delete(key: string): boolean;
  /** Removes everything (reason `delete` for each entry). */
  clear(): void;
  /** Live entries, in no promised order; safe against deletes made while iterating. */
  entries(): IterableIterator<[string, V]>;
}

/** The dispose reasons counted as evictions on /metrics: budget pressure and TTL. */
export type EvictionReason = 'evict' | 'expire';

/** Entries a tier dropped, by {@link EvictionReason}, since start. */
export type EvictionCounts = Readonly<Record<EvictionReason, number>>;

/**
 * A counter of evictions by reason and the dispose callback that feeds it;
 * deletes and replacements are not evictions and are not counted.
 */
export function evictionCounts(): { readonly counts: EvictionCounts; count(reason: DisposeReason): void } {
  const counts = { evict: 0, expire: 0 };
  return {
    counts,
    count(reason) {
      if (reason === 'evict' || reason === 'expire') counts[reason]++;
    },
  };
}
