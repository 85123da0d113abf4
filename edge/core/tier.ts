import type { ReadEntry } from '../../shared/http.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';

/**
 * An entry in an edge's near-user tier: the entry as the origin stored it
 * (times in Unix milliseconds; `Age` counts from `createdAtMs`), where
 * `expiresAtMs` is when this edge stops serving it: the earlier of the
 * entry's own expiry and the edge's TTL cap (`EDGE_MAX_TTL_SECONDS`).
 */
export interface EdgeEntry extends ReadEntry {
  readonly namespace: string;
  readonly key: string;
  /** Which origin tier filled it (`redis`, `memory`, …), for `X-Cache-Tier` diagnostics. */
  readonly filledFrom: string;
}

/**
 * The near-user tier seam (STYLE.md §1). Synchronous, like an L1: nothing
 * here may block on I/O. Implementations: `edge/core/memory-tier.ts`.
 */
export interface EdgeTier {
  /** A live entry, or undefined (absent or expired). */
  get(namespace: string, key: string): EdgeEntry | undefined;
  /**
   * Stores `entry` unless the tier holds the same key at a higher version.
   * @returns true when stored.
   */
  set(entry: EdgeEntry): boolean;
  /** Removes one key. */
  delete(namespace: string, key: string): void;
  /**
   * Applies a purge: removes the named keys, tag members and prefix matches
   * of its namespace whose version is below `message.version`; a `flush`
   * removes every entry of the namespace below it.
   * @returns how many entries were removed.
   */
  purge(message: PurgeMessage): number;
  /** Drops everything (a `reset` on the purge stream). */
  clear(): void;
  /** Entries held now. */
  readonly size: number;
  /** Bytes counted against the budget now. */
  readonly bytes: number;
  /** Entries dropped to stay within the byte budget so far (not expiries or purges). Optional: tiers that cannot tell leave it out. */
  readonly evictions?: number;
  /** Entries dropped so far by reason: `evict` (byte budget), `expire` (found past their TTL). Optional. */
  readonly evictionsByReason?: Readonly<Record<'evict' | 'expire', number>>;
  /** The eviction policy (`lru`, `lfu`, `s3fifo`), when the tier has one. */
  readonly policy?: string;
}
