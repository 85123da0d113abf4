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
import type { GraceWindows } from '../../shared/lifecycle.ts';

/** A stored value and its metadata: the entry a read answers with (`shared/http.ts`). */
export type StoredEntry = ReadEntry;

/** What a write supplies; the store assigns version and times. */
export interface EntryInput {
  readonly value: Uint8Array;
  readonly contentType: string;
  /** Time to live, milliseconds (> 0). */
  readonly ttlMs: number;
  readonly tags: readonly string[];
  /** Grace windows after the TTL (RFC 5861); absent = none. The store keeps the entry through the longer one. */
  readonly grace?: GraceWindows | undefined;
  /**
   * The refresh lease this write completes (its id from {@link Store.grantLease}):
   * the write happens only while that lease is the key's, unexpired, and the
   * entry's version is the one it was granted at; otherwise the store throws
   * {@link LeaseLostError} and writes nothing.
   */
  readonly leaseId?: string | undefined;
  /** Idempotency record written with the change (see {@link OnceRecord}); stores without support ignore it. */
  readonly once?: OnceRecord | undefined;
}

/**
 * An idempotency record kept with a change, by request id (the hub's
 * `correlation_id`): written in the same atomic step as the entry (one Lua
 * script in the entry's hash slot on Redis and Redis Cluster, one
 * synchronous step in the memory store), one per key. A later write or
 * delete of the same key carrying the same `id` and `fingerprint` changes
 * nothing and returns what the first one returned (same version, same
 * times); one with the same `id` and another `fingerprint` throws
 * {@link OnceConflictError}. So a request redelivered after a crash
 * anywhere past the store write is never applied twice, and a batch
 * redelivered after a partial write applies only the keys not yet recorded.
 *
 * The local fallback tier (Redis unavailable) keeps no records: a change it
 * accepts is not deduplicated by the store.
 */
export interface OnceRecord {
  /** The request's id (1-128 characters). */
  readonly id: string;
  /** What makes a redelivery the same request (content and credential). */
  readonly fingerprint: string;
  /** Milliseconds the record is kept (> 0). */
  readonly ttlMs: number;
}

/** Thrown when a {@link OnceRecord}'s id was already used by a request of another fingerprint; the hub answers CACHE_004. */
export class OnceConflictError extends Error {
  constructor(key: string) {
    super(`request id already used by a different request on ${key}`);
    this.name = 'OnceConflictError';
  }
}

/** A refresh lease (memcache leases, Nishtala et al., NSDI 2013): one holder per key at a time. */
export interface RefreshLease {
  /** Opaque id the holder presents with its write (`X-Cache-Lease`). */
  readonly id: string;
  /** The entry's version when granted (0 when absent); a write under the lease needs it unchanged. */
  readonly version: number;
}

/** Thrown by `set` when the write's refresh lease no longer holds; the service answers 412 CACHE_006. */
export class LeaseLostError extends Error {
  constructor(key: string) {
    super(`refresh lease of ${key} no longer holds`);
    this.name = 'LeaseLostError';
  }
}

/** Which stored entries a purge removes, within one namespace. */
export interface PurgeSelector {
  readonly keys: readonly string[];
  readonly tags: readonly string[];
  /** Key prefix, or null. */
  readonly prefix: string | null;
  /**
   * Soft purge: mark the entries stale (fresh lifetime ends now, grace
   * windows kept, `softPurgedAtMs` set, version bumped) instead of removing
   * them; an entry with no grace left is removed. Default false.
   */
  readonly soft?: boolean | undefined;
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

/**
 * One key of an atomic compare-and-swap ({@link Store.swap}): the version the
 * key must hold now, and what to do with it when every key of the swap does.
 */
export interface SwapChange {
  readonly key: string;
  /**
   * Version of the live entry the caller read; 0 = the key must be absent,
   * deleted, or past its fresh lifetime (an entry in its grace windows counts
   * as absent here on every store, as a Redis key past its TTL would).
   */
  readonly expectedVersion: number;
  /** `set` writes `input`, `delete` removes the entry, `check` only requires the version (a read in a transaction). */
  readonly action:
    | { readonly kind: 'set'; readonly input: EntryInput }
    | { readonly kind: 'delete' }
    | { readonly kind: 'check' };
}

/** What a swap did, by key, for the keys it set (their new entries) or deleted (removal results). */
export type SwapResults = ReadonlyMap<string, StoredEntry | RemovalResult>;

/**
 * The outcome of {@link Store.swap}: applied, refused because some key no
 * longer held its expected version (`conflict`: read again and retry), or
 * refused because the keys live in different Redis Cluster hash slots
 * (`cross-slot`, which Redis answers `CROSSSLOT` for a transaction).
 */
export type SwapOutcome =
  | { readonly kind: 'swapped'; readonly results: SwapResults }
  | { readonly kind: 'conflict' }
  | { readonly kind: 'cross-slot' };

/** The storage kinds, also used as `X-Cache-Tier` of an origin hit. */
export type StoreKind = 'memory' | 'redis';

export interface Store {
  /** `memory` for the embedded store, `redis` for standalone and Cluster. */
  readonly kind: StoreKind;
  /**
   * The entry, or null when absent or past its last grace window. An entry
   * past `expiresAtMs` but within grace is returned: the caller decides
   * (`shared/lifecycle.ts` `freshness`) whether it may serve it.
   */
  get(namespace: string, key: string): Promise<StoredEntry | null>;
  /** Entries found, by key; absent keys and keys past their grace are left out (stale ones are returned, as by `get`). */
  getMany(namespace: string, keys: readonly string[]): Promise<Map<string, StoredEntry>>;
  /** Writes one entry and returns it with its new version. */
  set(namespace: string, key: string, input: EntryInput): Promise<StoredEntry>;
  /** Writes several entries; returns them, by key, with their new versions. */
  setMany(namespace: string, entries: ReadonlyMap<string, EntryInput>): Promise<Map<string, StoredEntry>>;
  /** Removes one entry. `removed` is 0 when it was absent. With `once`, idempotent by its id as {@link OnceRecord} says. */
  delete(namespace: string, key: string, once?: OnceRecord): Promise<RemovalResult>;
  /** Removes the entries a selector names: keys, tag members and keys with the prefix. */
  purge(namespace: string, selector: PurgeSelector): Promise<RemovalResult>;
  /** Keys matching a glob, a page at a time (see {@link KeyListing}); every driver has it, facades forward it. */
  listKeys?(namespace: string, request: KeyListRequest): Promise<KeyPage>;
  /**
   * Atomic compare-and-swap over keys of one namespace: applies every change
   * only when every key still holds its `expectedVersion`; new versions are
   * stamped as by `set` and `delete`. On Redis one Lua script (atomic by
   * Redis's single-threaded execution); on Cluster only for keys in one hash
   * slot (Redis Cluster specification, "Keys distribution model"). The
   * building block of conditional writes (the Upstash protocol's `SET NX`,
   * `INCR`, `MULTI/EXEC`). Optional: a store without it cannot serve them.
   */
  swap?(namespace: string, changes: readonly SwapChange[]): Promise<SwapOutcome>;
  /**
   * Grants the key's refresh lease for `leaseMs` unless another is
   * outstanding, or a live entry of a version other than `seenVersion` (the
   * one the caller read; 0 for a miss) is there now: null then. Optional: a
   * store without it grants none.
   */
  grantLease?(
    namespace: string,
    key: string,
    id: string,
    leaseMs: number,
    seenVersion: number,
  ): Promise<RefreshLease | null>;
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

/** One page request of a key listing (`Store.listKeys`). */
export interface KeyListRequest {
  /** Glob with Redis `SCAN MATCH` semantics (`origin/listing/glob.ts`), validated by the caller. */
  readonly match: string;
  /** The store's cursor from the previous page; null for the first page. */
  readonly cursor: string | null;
  /**
   * Work bound of this call, as `SCAN`'s `COUNT`: about this many stored keys
   * are examined, so a page may hold fewer (even none) while the listing
   * goes on. 1 … 1,000.
   */
  readonly count: number;
}

/** A key a listing found, with its metadata. */
export interface ListedKey {
  readonly key: string;
  /** Bytes of the stored value (after compression or encryption, as stored). */
  readonly sizeBytes: number;
  /** Unix ms when the entry expires. */
  readonly expiresAtMs: number;
  /** The entry's version (compared with the namespace version to hide flushed entries). */
  readonly version: number;
  readonly tags: readonly string[];
}

/** One page of a key listing. */
export interface KeyPage {
  readonly keys: readonly ListedKey[];
  /** Where the next page starts; null when the listing is done. Opaque, store-specific. */
  readonly cursor: string | null;
}

/**
 * Key listing, a capability of every driver (memory: a sorted index; Redis:
 * `SCAN MATCH`; Cluster: `SCAN` on each master in turn). Guarantee, as
 * `SCAN`'s: a key present for the whole listing is returned; a key written
 * or deleted during it may or may not be.
 *
 * Errors: CACHE_004 for a cursor this store did not issue; CACHE_005 (503)
 * when the Cluster's topology changed since the listing began (restart it).
 */
export interface KeyListing {
  listKeys(namespace: string, request: KeyListRequest): Promise<KeyPage>;
}
