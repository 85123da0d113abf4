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
  /** The key's profile is `strong`: every read of the copy is revalidated at the origin. */
  readonly strong?: boolean;
}

/**
 * The near-user tier seam (STYLE.md §1). Synchronous, like an L1: nothing
 * here may block on I/O. Implementations: `edge/core/memory-tier.ts`.
 */
export interface EdgeTier {
  /**
   * An entry within its fresh lifetime or grace windows (until
   * `keepUntilMs` of `shared/lifecycle.ts`), or undefined; the caller tells
   * fresh from stale with `freshness`.
   */
  get(namespace: string, key: string): EdgeEntry | undefined;
  /** What {@link get} answers, without counting an access for the eviction policy (LFU, S3-FIFO frequency). */
  peek(namespace: string, key: string): EdgeEntry | undefined;
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

/**
 * A second, shared tier behind the isolate's or process's memory tier (the
 * L1 sync / L2 async split of BentoCache): asynchronous, possibly shared
 * with other instances that follow the purge log on their own, and unable to
 * enumerate what it holds, so it cannot remove tag or prefix matches by
 * walking. Instead it applies purges as version floors checked on every
 * read (plus deletes of the keys it knows), and a reset as a time floor:
 * entries filled before the floor are not trusted. The edge consults it
 * after a memory miss and before the origin, only while its lease holds.
 * Implementations: `edge/adapters/workers/cache-api-tier.ts` (the Workers
 * Cache API).
 */
export interface SharedEdgeTier {
  /**
   * A live entry that passes every floor, or undefined (absent, expired,
   * filled before the last reset, or older than a purge applied here).
   */
  get(namespace: string, key: string): Promise<EdgeEntry | undefined>;
  /**
   * Stores `entry` unless it is expired or the tier holds the same key at a
   * higher version.
   * @param filledAtMs Unix ms on this instance's clock when the read that
   *   produced the entry was sent to the origin; default: now. Reads refuse
   *   entries filled at or before the last reset.
   * @returns true when stored.
   */
  set(entry: EdgeEntry, filledAtMs?: number): Promise<boolean>;
  /** Removes one key. */
  delete(namespace: string, key: string): Promise<void>;
  /**
   * Applies a purge: reads refuse entries of its keys, tags and prefix below
   * `message.version` from the call on (before the returned promise
   * settles); the matching older entries this instance stored are deleted
   * unless another instance has since stored a newer copy in their place
   * (others' copies are refused, not deleted: it cannot know their versions).
   * @returns how many entries this instance stored and removed.
   */
  purge(
    message: Pick<PurgeMessage, 'namespace' | 'keys' | 'tags' | 'prefix' | 'version'> & {
      readonly action?: PurgeMessage['action'];
    },
  ): Promise<number>;
  /**
   * A reset: from now on, reads refuse every entry filled until now; the
   * entries this instance stored are deleted, unless another instance has
   * since stored a newer copy in their place.
   */
  clear(): Promise<void>;
  /** Entries this instance stored and believes still held. */
  readonly size: number;
  /** Bytes of those entries (values + keys). */
  readonly bytes: number;
  /** Name in `X-Cache-Tier` answers and metrics (`cache-api`). */
  readonly name: string;
}
