import { CacheError } from '../../shared/errors.ts';
import type { CacheStatus, CacheTier } from '../../shared/headers.ts';
import { nextVersion } from '../../shared/version.ts';
import type { BreakerState, RedisBreaker } from '../breaker.ts';
import type { DirtyChange, LocalTier } from './local-tier.ts';
import type { EntryInput, PurgeSelector, RemovalResult, Store, StoredEntry } from './store.ts';
import type { WriteBack } from './write-back.ts';

/** A read and where it came from. */
export interface TieredRead {
  readonly entry: StoredEntry;
  readonly tier: CacheTier;
  /** `HIT` from Redis or from a change this origin accepted; `STALE` for a local copy Redis may have moved past. */
  readonly status: Extract<CacheStatus, 'HIT' | 'STALE'>;
  /** True when Redis did not confirm the answer (`X-Cache-Degraded: 1`). */
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
  readonly breaker: BreakerState;
  /** Changes accepted locally, waiting for write-back. */
  readonly dirty: number;
  /** True when a write now would be acknowledged by Redis (the breaker is closed). */
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

/** A store with a breaker and a local fallback tier in front of it. */
export interface TieredStore extends Store {
  /** Like `get`, telling which tier answered and whether Redis confirmed it. */
  getTiered(namespace: string, key: string): Promise<TieredRead | null>;
  /** Like `getMany`, telling which tier answered and whether Redis confirmed it. */
  getManyTiered(namespace: string, keys: readonly string[]): Promise<TieredBatch>;
  health(): StoreHealth;
  readonly stats: ResilienceStats;
  readonly breaker: RedisBreaker;
  readonly local: LocalTier;
  /**
   * True when a write's entry or a delete's result was accepted by the local
   * tier only (Redis unavailable): not durable yet (`X-Cache-Degraded: 1`).
   */
  acceptedLocally(result: StoredEntry | RemovalResult): boolean;
  /** Probes an open breaker and writes dirty changes back now; resolves when this round is done. */
  recover(): Promise<void>;
}

/** True when `store` is a {@link TieredStore}. */
export function isTieredStore(store: Store): store is TieredStore {
  return 'getTiered' in store && 'health' in store;
}

/** Options of {@link resilientStore}. */
export interface ResilientStoreOptions {
  /** The Redis driver (standalone or Cluster). */
  readonly inner: Store;
  /** Conditional writes for replaying dirty changes. */
  readonly writeBack: WriteBack;
  readonly breaker: RedisBreaker;
  readonly local: LocalTier;
  /**
   * Milliseconds between background recovery rounds (probe an open breaker,
   * write dirty changes back). 0 = no timer: requests trigger rounds instead.
   */
  readonly recoveryIntervalMs: number;
  /**
   * Resolves when the driver's connection is usable, rejects when `signal`
   * aborts (the per-call timeout). Calls wait on it instead of entering the
   * client's offline queue, so a timed-out write can never be sent later,
   * after newer changes (see `connectionReady` in `connection-ready.ts`).
   */
  readonly ready?: (signal: AbortSignal) => Promise<void>;
  /** Clock, Unix ms; versions of local writes are stamped from it. */
  readonly now?: () => number;
  /** Called for every failed Redis call, for logs. */
  readonly onError?: (operation: string, error: unknown) => void;
}

/**
 * The facade that puts the circuit breaker and the local fallback tier in
 * front of a Redis driver (the BentoCache shape: thin drivers, one facade).
 *
 * - **Healthy**: every call goes to Redis through the breaker; reads and
 *   acknowledged writes leave a clean copy in the local tier.
 * - **Redis failing or circuit open**: reads answer from the local tier —
 *   `HIT` for a change accepted here, `STALE` for a clean copy — flagged
 *   degraded; a key not held locally fails fast with 503 CACHE_005. Writes
 *   and single-key deletes are accepted as dirty changes, stamped with
 *   `nextVersion(known, now)` from this origin's clock. Purges by tag or
 *   prefix are refused (CACHE_005): they cannot be replayed safely.
 * - **Recovery**: a round probes the breaker (half-open after the cool-down)
 *   and, once closed, replays dirty changes with `setIfNewer` /
 *   `deleteIfOlder`, so a newer version in Redis — from any origin — wins.
 *   Until a change is written back, reads prefer it over an older Redis value.
 *
 * Durability: dirty changes live in this process only; a crash during an
 * outage loses them (docs/redis-cluster.md).
 *
 * Errors: CACHE_005 (503) when Redis is unavailable and the local tier cannot
 * answer (read miss, tag/prefix purge, dirty budget full); the inner store's
 * CacheErrors pass through.
 */
export function resilientStore(options: ResilientStoreOptions): TieredStore {
  const { inner, breaker, local, writeBack } = options;
  const now = options.now ?? Date.now;
  const ready = options.ready ?? (async () => {});
  const stats: ResilienceStats = {
    fallbackHits: 0,
    fallbackMisses: 0,
    dirtyWrites: 0,
    writtenBack: 0,
    skippedNewer: 0,
  };
  let round: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  const localOnly = new WeakSet<StoredEntry | RemovalResult>();

  const timer =
    options.recoveryIntervalMs > 0
      ? setInterval(() => {
          if (breaker.state !== 'closed' || local.dirtyCount > 0) void recover();
        }, options.recoveryIntervalMs)
      : null;
  timer?.unref();

  /**
   * Runs a recovery round, or — when one is already in flight, which may have
   * started before Redis came back — one more round right after it (at most
   * one is queued).
   */
  function recover(): Promise<void> {
    if (!round) {
      round = runRound().finally(() => {
        round = null;
      });
      return round;
    }
    queued ??= round.then(() => {
      queued = null;
      return recover();
    });
    return queued;
  }

  async function runRound(): Promise<void> {
    if (breaker.state !== 'closed' && !(await breaker.probe((signal) => ready(signal).then(() => inner.ping())))) {
      return;
    }
    await flush();
  }

  /** Without a timer, requests start recovery rounds (never awaited by the request). */
  function nudge(): void {
    if (timer === null && (breaker.state !== 'closed' || local.dirtyCount > 0)) void recover();
  }

  async function flush(): Promise<void> {
    for (const change of local.dirtyChanges()) {
      try {
        const applied = await breaker.run(async (signal) => {
          await ready(signal);
          return change.kind === 'set'
            ? await writeBack.setIfNewer(change.namespace, change.key, change.entry)
            : await writeBack.deleteIfOlder(change.namespace, change.key, change.version);
        }, false);
        if (change.kind === 'set' && !applied) {
          stats.skippedNewer += 1;
          // Redis holds something newer (or the entry expired): the local copy is outdated.
          local.dropClean(change.namespace, change.key);
        } else {
          stats.writtenBack += 1;
        }
        local.settle(change);
      } catch (error) {
        options.onError?.('write_back', error);
        return;
      }
    }
  }

  async function call<T>(operation: string, run: () => Promise<T>, idempotent: boolean): Promise<T | Failed> {
    try {
      return await breaker.run(async (signal) => {
        await ready(signal);
        return await run();
      }, idempotent);
    } catch (error) {
      if (error instanceof CacheError) throw error;
      options.onError?.(operation, error);
      nudge();
      return failed;
    }
  }

  function unavailable(operation: string, message: string, details: Record<string, unknown> = {}): CacheError {
    return new CacheError('CACHE_005', message, {
      status: 503,
      details: { operation, breaker: breaker.state, ...details },
    });
  }

  function accept(change: DirtyChange): void {
    if (!local.putDirty(change)) {
      throw unavailable(change.kind, 'Store unavailable and the local fallback tier is full', { key: change.key });
    }
    stats.dirtyWrites += 1;
  }

  function writeLocally(namespace: string, key: string, input: EntryInput): StoredEntry {
    const t = now();
    const entry: StoredEntry = {
      value: input.value,
      contentType: input.contentType,
      version: nextVersion(local.knownVersion(namespace, key), t),
      createdAtMs: t,
      expiresAtMs: t + input.ttlMs,
      tags: [...input.tags],
    };
    accept({ kind: 'set', namespace, key, entry });
    localOnly.add(entry);
    return entry;
  }

  function deleteLocally(namespace: string, key: string): RemovalResult {
    const known = local.lookup(namespace, key);
    const version = nextVersion(local.knownVersion(namespace, key), now());
    accept({ kind: 'delete', namespace, key, version });
    const result = { removed: known.kind === 'clean' || known.kind === 'dirty-set' ? 1 : 0, version };
    localOnly.add(result);
    return result;
  }

  /** Merges Redis's answer with a local change Redis has not seen yet; null when the key is absent. */
  function reconcile(namespace: string, key: string, fromRedis: StoredEntry | null): TieredRead | null {
    const known = local.lookup(namespace, key);
    if (known.kind === 'dirty-set' && (!fromRedis || known.entry.version > fromRedis.version)) {
      return { entry: known.entry, tier: 'origin-local', status: 'HIT', degraded: true };
    }
    if (known.kind === 'dirty-delete' && (!fromRedis || known.version > fromRedis.version)) return null;
    if (!fromRedis) {
      local.dropClean(namespace, key);
      return null;
    }
    local.putClean(namespace, key, fromRedis);
    return { entry: fromRedis, tier: inner.kind, status: 'HIT', degraded: false };
  }

  /** The local tier's answer while Redis cannot give one; undefined when it knows nothing. */
  function fallback(namespace: string, key: string): TieredRead | null | undefined {
    const known = local.lookup(namespace, key);
    switch (known.kind) {
      case 'dirty-set':
        return { entry: known.entry, tier: 'origin-local', status: 'HIT', degraded: true };
      case 'clean':
        return { entry: known.entry, tier: 'origin-local', status: 'STALE', degraded: true };
      case 'dirty-delete':
        return null;
      default:
        return undefined;
    }
  }

  const store: TieredStore = {
    kind: inner.kind,
    stats,
    breaker,
    local,
    recover,
    acceptedLocally: (result) => localOnly.has(result),
    health() {
      return { breaker: breaker.state, dirty: local.dirtyCount, durable: breaker.state === 'closed' };
    },
    async getTiered(namespace, key) {
      const fromRedis = await call('get', () => inner.get(namespace, key), true);
      if (fromRedis !== failed) {
        if (local.dirtyCount > 0) nudge();
        return reconcile(namespace, key, fromRedis);
      }
      const answer = fallback(namespace, key);
      if (answer === undefined) {
        stats.fallbackMisses += 1;
        throw unavailable('get', 'Store unavailable and key not in the local tier', { key });
      }
      stats.fallbackHits += 1;
      return answer;
    },
    async getManyTiered(namespace, keys) {
      const unique = [...new Set(keys)];
      const fromRedis = await call('batch_get', () => inner.getMany(namespace, unique), true);
      const found = new Map<string, StoredEntry>();
      let degraded = fromRedis === failed;
      for (const key of unique) {
        const read =
          fromRedis === failed ? fallback(namespace, key) : reconcile(namespace, key, fromRedis.get(key) ?? null);
        if (read) {
          found.set(key, read.entry);
          degraded ||= read.degraded;
        }
      }
      if (fromRedis === failed) stats.fallbackHits += found.size;
      return { found, tier: fromRedis === failed ? 'origin-local' : inner.kind, degraded };
    },
    async get(namespace, key) {
      return (await store.getTiered(namespace, key))?.entry ?? null;
    },
    async getMany(namespace, keys) {
      return (await store.getManyTiered(namespace, keys)).found;
    },
    async set(namespace, key, input) {
      const written = await call('set', () => inner.set(namespace, key, input), false);
      if (written === failed) return writeLocally(namespace, key, input);
      local.discardDirty(namespace, key);
      local.putClean(namespace, key, written);
      return written;
    },
    async setMany(namespace, entries) {
      const written = await call('batch_set', () => inner.setMany(namespace, entries), false);
      if (written === failed) {
        return new Map([...entries].map(([key, input]) => [key, writeLocally(namespace, key, input)]));
      }
      for (const [key, entry] of written) {
        local.discardDirty(namespace, key);
        local.putClean(namespace, key, entry);
      }
      return written;
    },
    async delete(namespace, key) {
      const removed = await call('delete', () => inner.delete(namespace, key), false);
      if (removed === failed) return deleteLocally(namespace, key);
      local.discardDirty(namespace, key);
      local.dropClean(namespace, key);
      return removed;
    },
    async purge(namespace, selector: PurgeSelector) {
      const result = await call('purge', () => inner.purge(namespace, selector), false);
      if (result === failed) {
        if (selector.tags.length > 0 || selector.prefix !== null) {
          throw unavailable('purge', 'Store unavailable: a purge by tag or prefix needs Redis');
        }
        let removed = 0;
        let version = nextVersion(0, now());
        for (const key of new Set(selector.keys)) {
          const r = deleteLocally(namespace, key);
          removed += r.removed;
          version = Math.max(version, r.version);
        }
        const local = { removed, version };
        localOnly.add(local);
        return local;
      }
      const keys = new Set(selector.keys);
      const tags = new Set(selector.tags);
      const doomed = local.matching(
        namespace,
        (key, entry) =>
          keys.has(key) ||
          (selector.prefix !== null && key.startsWith(selector.prefix)) ||
          (entry?.tags.some((t) => tags.has(t)) ?? false),
      );
      for (const key of doomed) {
        local.discardDirty(namespace, key);
        local.dropClean(namespace, key);
      }
      return result;
    },
    async ping() {
      await breaker.run(async (signal) => {
        await ready(signal);
        await inner.ping();
      }, true);
    },
    async close() {
      if (timer) clearInterval(timer);
      await queued;
      await round;
      await inner.close();
    },
  };
  return store;
}

const failed: unique symbol = Symbol('failed');
type Failed = typeof failed;
