import type { Cluster, Redis } from 'ioredis';
import type { CacheStatus, CacheTier } from '../../shared/headers.ts';
import type { BreakerState, RedisBreaker } from '../breaker.ts';
import type { LocalTier } from './local-tier.ts';

/**
 * The origin's storage seam. One interface, one small file per driver
 * (memory, Redis standalone, Redis Cluster), one conformance suite in
 * `test/conformance/store.ts` that every driver, and the facades over them,
 * must pass.
 *
 * The origin itself talks to a {@link TieredStore}: the resilient facade
 * (`resilient.ts`) over a Redis driver, or the pass-through facade
 * (`pass-through.ts`) over the embedded memory store.
 */

import type { ReadEntry } from '../../shared/http.ts';

/** A stored value and its metadata: the entry a read answers with (`shared/http.ts`). */
export type StoredEntry = ReadEntry;

/** What a write supplies; the store assigns version and times. */
export interface EntryInput {
  readonly value: Uint8Array;
  readonly contentType: string;
  /** Time to live, milliseconds (> 0). */
  readonly ttlMs: number;
  readonly tags: readonly string[];
}

/** Which stored entries a purge removes, within one namespace. */
export interface PurgeSelector {
  readonly keys: readonly string[];
  readonly tags: readonly string[];
  /** Key prefix, or null. */
  readonly prefix: string | null;
}

/** Result of a delete or purge: how many entries went, and the version floor it set. */
export interface RemovalResult {
  readonly removed: number;
  /**
   * A version strictly greater than every version removed: edges drop any
   * copy below it.
   */
  readonly version: number;
}

/** The storage kinds, also used as `X-Cache-Tier` of an origin hit. */
export type StoreKind = 'memory' | 'redis';

export interface Store {
  /** `memory` for the embedded store, `redis` for standalone and Cluster. */
  readonly kind: StoreKind;
  /** The entry, or null when absent or expired. */
  get(namespace: string, key: string): Promise<StoredEntry | null>;
  /** Entries found, by key; absent and expired keys are left out. */
  getMany(namespace: string, keys: readonly string[]): Promise<Map<string, StoredEntry>>;
  /** Writes one entry and returns it with its new version. */
  set(namespace: string, key: string, input: EntryInput): Promise<StoredEntry>;
  /** Writes several entries; returns them, by key, with their new versions. */
  setMany(namespace: string, entries: ReadonlyMap<string, EntryInput>): Promise<Map<string, StoredEntry>>;
  /** Removes one entry. `removed` is 0 when it was absent. */
  delete(namespace: string, key: string): Promise<RemovalResult>;
  /** Removes the entries a selector names: keys, tag members and keys with the prefix. */
  purge(namespace: string, selector: PurgeSelector): Promise<RemovalResult>;
  /** Resolves when the backing server answers; rejects otherwise. */
  ping(): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** A read that found an entry, and where it came from. */
export interface TieredRead {
  readonly entry: StoredEntry;
  readonly tier: CacheTier;
  /** `HIT` from the store or from a change this origin accepted; `STALE` for a local copy Redis may have moved past. */
  readonly status: Extract<CacheStatus, 'HIT' | 'STALE'>;
  /** True when Redis did not confirm the answer (`X-Cache-Degraded: 1`). */
  readonly degraded: boolean;
}

/**
 * A read that found nothing. `degraded` is true when the miss depends on the
 * local tier (a delete accepted during an outage that Redis has not
 * confirmed): the answer carries `X-Cache-Degraded: 1` like any other.
 */
export interface TieredMiss {
  readonly entry: null;
  readonly degraded: boolean;
}

/** A batch read and where it came from. */
export interface TieredBatch {
  readonly found: Map<string, StoredEntry>;
  readonly tier: CacheTier;
  /** True when some answer (or some miss) was not confirmed by Redis. */
  readonly degraded: boolean;
}

/** Store health for `/ready` and metrics. */
export interface StoreHealth {
  /** The circuit breaker's state; null for a store without one (the embedded store). */
  readonly breaker: BreakerState | null;
  /** Changes accepted locally, waiting for write-back. */
  readonly dirty: number;
  /** True when a write now would be durable in the store (for Redis: the breaker is closed). */
  readonly durable: boolean;
}

/** Counters of the fallback tier, read by metrics at scrape time. */
export interface ResilienceStats {
  /** Reads answered by the local tier because Redis could not. */
  fallbackHits: number;
  /** Reads refused with CACHE_005: Redis unavailable and key not held locally. */
  fallbackMisses: number;
  /** Writes and deletes accepted into the local tier as dirty. */
  dirtyWrites: number;
  /** Dirty changes written back to Redis. */
  writtenBack: number;
  /** Dirty changes dropped at write-back because Redis held a newer version. */
  skippedNewer: number;
}

/** The breaker and local fallback tier in front of a remote store (`resilient.ts`). */
export interface Resilience {
  readonly breaker: RedisBreaker;
  readonly local: LocalTier;
  readonly stats: ResilienceStats;
  /** Probes an open breaker and writes dirty changes back now; resolves when this round is done. */
  recover(): Promise<void>;
}

/** Size of an embedded store, read by metrics at scrape time. */
export interface StoreUsage {
  /** Entries held. */
  readonly size: number;
  /** Bytes counted against the store's budget (values + keys + overhead). */
  readonly bytes: number;
  /** Entries evicted for the byte budget, since start. */
  readonly evictions: number;
  /** Entries dropped by reason (`evict`: byte budget; `expire`: found past its TTL), since start. */
  readonly evictionsByReason?: Readonly<Record<'evict' | 'expire', number>>;
  /** The eviction policy (`EVICTION_POLICY`). */
  readonly policy?: string;
  /**
   * One namespace's live entries at or above `floor` (its namespace version);
   * entries below it are reclaimed on the way. Optional.
   */
  namespaceUsage?(namespace: string, floor: number): NamespaceUsage;
}

/** One namespace's share of an embedded store. */
export interface NamespaceUsage {
  /** Live entries. */
  readonly entries: number;
  /** Bytes counted against the budget (values + keys + overhead). */
  readonly bytes: number;
}

/**
 * The store the origin serves from: a {@link Store} that also tells where each
 * read came from and whether Redis confirmed it (BentoCache's `RemoteCache`
 * facade shape). Capabilities only some stores have are optional members
 * (unstorage style), never found by inspecting a store's type.
 */
export interface TieredStore extends Store {
  /** Like `get`, telling which tier answered and whether Redis confirmed the answer (a miss included). */
  getTiered(namespace: string, key: string): Promise<TieredRead | TieredMiss>;
  /** Like `getMany`, telling which tier answered and whether Redis confirmed it. */
  getManyTiered(namespace: string, keys: readonly string[]): Promise<TieredBatch>;
  health(): StoreHealth;
  /**
   * True when a write's entry or a delete's result was accepted by the local
   * tier only (Redis unavailable): not durable yet (`X-Cache-Degraded: 1`).
   */
  acceptedLocally(result: StoredEntry | RemovalResult): boolean;
  /** Present when a breaker and local fallback tier stand in front of the store. */
  readonly resilience?: Resilience;
  /** Present for a store held in this process (entries, bytes, evictions). */
  readonly usage?: StoreUsage;
  /** Present for a Redis store built from config: its client, for per-node health metrics. */
  readonly redisClient?: Redis | Cluster;
}
