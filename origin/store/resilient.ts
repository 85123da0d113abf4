import { CacheError } from '../../shared/errors.ts';
import { storageKey } from '../../shared/keys.ts';
import { graceFields } from '../../shared/lifecycle.ts';
import { nextVersion } from '../../shared/version.ts';
import type { RedisBreaker } from '../breaker.ts';
import { readyNow } from './connection-ready.ts';
import type { DirtyChange, LocalLookup, LocalTier } from './local-tier.ts';
import {
  type EntryInput,
  type KeyListRequest,
  LeaseLostError,
  OnceConflictError,
  type PurgeSelector,
  type RemovalResult,
  type Resilience,
  type ResilienceStats,
  type Store,
  type StoredEntry,
  type SwapChange,
  type TieredMiss,
  type TieredRead,
  type TieredStore,
} from './store.ts';
import { keySequencer, recoveryLoop, type WriteBack } from './write-back.ts';

/** The resilient facade: a {@link TieredStore} whose breaker and local tier are its {@link Resilience}. */
export type ResilientStore = TieredStore & Resilience & { readonly resilience: Resilience };

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
   * Answering `readyNow` (same module) lets the call go at once, without a
   * microtask per Redis call.
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
 *   `HIT` for a change accepted here, `STALE` for a clean copy, a miss for a
 *   delete accepted here — all flagged degraded; a key not held locally fails
 *   fast with 503 CACHE_005. Writes
 *   and single-key deletes are accepted as dirty changes, stamped with
 *   `nextVersion(known, now)` from this origin's clock. Purges by tag or
 *   prefix are refused (CACHE_005): they cannot be replayed safely.
 * - **Recovery** (`recoveryLoop` in `write-back.ts`): a round probes the
 *   breaker (half-open after the cool-down) and, once closed, replays dirty
 *   changes with `setIfNewer` / `deleteIfOlder`, so a newer version in Redis
 *   — from any origin — wins. Until a change is written back, reads prefer it
 *   (flagged degraded) over an older Redis value, including a read whose Redis
 *   answer was given before the write-back settled the change.
 * - **Order**: writes, deletes and write-back of one key reach Redis one after
 *   the other, in the order this origin acknowledged them.
 *
 * Durability: dirty changes live in this process only; a crash during an
 * outage loses them (docs/redis-cluster.md).
 *
 * Errors: CACHE_005 (503) when Redis is unavailable and the local tier cannot
 * answer (read miss, tag/prefix purge, dirty budget full); the inner store's
 * CacheErrors pass through.
 */
export function resilientStore(options: ResilientStoreOptions): ResilientStore {
  const { inner, breaker, local, writeBack } = options;
  const now = options.now ?? Date.now;
  const ready = options.ready ?? (() => readyNow);
  const stats: ResilienceStats = {
    fallbackHits: 0,
    fallbackMisses: 0,
    dirtyWrites: 0,
    writtenBack: 0,
    skippedNewer: 0,
  };
  const localOnly = new WeakSet<StoredEntry | RemovalResult>();
  /**
   * Per-key order of changes sent to Redis. Writes, deletes and write-back
   * of the same key run one after the other, so Redis applies them in the
   * order this origin acknowledges them: an in-flight write-back of a change
   * from the outage can never land after, and undo, a newer write (Redis
   * stamps that write's version from its own clock, which may sit below the
   * version this origin stamped on the older change).
   */
  const exclusive = keySequencer();
  const recovery = recoveryLoop({
    breaker,
    local,
    writeBack,
    sequence: exclusive,
    // Redis now holds this version (a tombstone, for a delete): stamp later local changes above it.
    settled: (change) =>
      seen(change.namespace, change.key, change.kind === 'set' ? change.entry.version : change.version),
    stats,
    ping: () => inner.ping(),
    ready,
    intervalMs: options.recoveryIntervalMs,
    onError: options.onError,
  });
  const { recover, nudge } = recovery;

  async function call<T>(operation: string, run: () => Promise<T>, idempotent: boolean): Promise<T | Failed> {
    try {
      return await breaker.run((signal) => {
        const gate = ready(signal);
        // Connected (the usual case): call now; `breaker.run` turns a synchronous throw into a rejection.
        return gate === readyNow ? run() : gate.then(run);
      }, idempotent);
    } catch (error) {
      if (error instanceof CacheError) throw error;
      options.onError?.(operation, error);
      nudge();
      return failed;
    }
  }

  /** Redis answering "no" (a lost lease, a request id used by another request) passes the breaker as a value, not a failure. */
  function answered(error: unknown): Promise<LeaseLostError | OnceConflictError> {
    if (error instanceof LeaseLostError || error instanceof OnceConflictError) return Promise.resolve(error);
    return Promise.reject(error);
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

  /**
   * Versions Redis returned for a key (reads, writes, deletes) or confirmed
   * by write-back (a settled change; a tombstone, for a delete), kept while
   * the clock has not moved past them. A local change is stamped above them,
   * so a change accepted during an outage is never ordered before one Redis
   * already acknowledged in the same millisecond — even when the local tier
   * no longer holds that version (a delete dropped the clean copy, a racing
   * read replaced it with an older one, or the change was settled).
   */
  const floors = new Map<string, number>();
  const floorKey = storageKey;

  function seen(namespace: string, key: string, version: number): void {
    const k = floorKey(namespace, key);
    if ((floors.get(k) ?? 0) < version) floors.set(k, version);
    if (floors.size > maxFloors) {
      // Any version below now × 1000 is already under every new stamp (`nextVersion`).
      const past = now() * 1000;
      for (const [f, v] of floors) if (v < past) floors.delete(f);
    }
  }

  function stamp(namespace: string, key: string): number {
    const floor = floors.get(floorKey(namespace, key)) ?? 0;
    return nextVersion(Math.max(local.knownVersion(namespace, key), floor), now());
  }

  function writeLocally(namespace: string, key: string, input: EntryInput): StoredEntry {
    const t = now();
    const entry: StoredEntry = {
      value: input.value,
      contentType: input.contentType,
      version: stamp(namespace, key),
      createdAtMs: t,
      expiresAtMs: t + input.ttlMs,
      tags: [...input.tags],
      ...graceFields(input.grace),
    };
    accept({ kind: 'set', namespace, key, entry });
    localOnly.add(entry);
    return entry;
  }

  function deleteLocally(namespace: string, key: string): RemovalResult {
    const known = local.lookup(namespace, key);
    const version = stamp(namespace, key);
    accept({ kind: 'delete', namespace, key, version });
    const result = { removed: known.kind === 'clean' || known.kind === 'dirty-set' ? 1 : 0, version };
    localOnly.add(result);
    return result;
  }

  /**
   * Merges Redis's answer with the changes this origin accepted that Redis had
   * not confirmed: those pending when the read was sent (`before`) and those
   * pending now. Taking both closes the race with write-back and with a
   * concurrent acknowledged write: either may settle a pending change between
   * Redis's answer and this merge, and Redis's answer, read before that,
   * must not then win over the change.
   */
  function reconcile(
    namespace: string,
    key: string,
    before: LocalLookup,
    fromRedis: StoredEntry | null,
  ): TieredRead | TieredMiss {
    if (fromRedis) seen(namespace, key, fromRedis.version);
    // Without dirty changes there is nothing pending to look up (the common case: Redis healthy).
    const change = newest(pending(before), local.dirtyCount > 0 ? pending(local.lookup(namespace, key)) : null);
    if (change && (!fromRedis || change.version > fromRedis.version)) {
      if (change.entry) return { entry: change.entry, tier: 'origin-local', status: 'HIT', degraded: true };
      // Redis confirms the absence only when it holds nothing either.
      return { entry: null, degraded: fromRedis !== null };
    }
    if (!fromRedis) {
      local.dropClean(namespace, key);
      return { entry: null, degraded: false };
    }
    local.putClean(namespace, key, fromRedis);
    return { entry: fromRedis, tier: inner.kind, status: 'HIT', degraded: false };
  }

  /** The local tier's answer while Redis cannot give one; undefined when it knows nothing. */
  function fallback(namespace: string, key: string): TieredRead | TieredMiss | undefined {
    const known = local.lookup(namespace, key);
    switch (known.kind) {
      case 'dirty-set':
        return { entry: known.entry, tier: 'origin-local', status: 'HIT', degraded: true };
      case 'clean':
        return { entry: known.entry, tier: 'origin-local', status: 'STALE', degraded: true };
      case 'dirty-delete':
        return { entry: null, degraded: true };
      default:
        return undefined;
    }
  }

  const resilience: Resilience = { breaker, local, stats, recover };
  const store: ResilientStore = {
    kind: inner.kind,
    ...resilience,
    resilience,
    acceptedLocally: (result) => localOnly.has(result),
    health() {
      return { breaker: breaker.state, dirty: local.dirtyCount, durable: breaker.state === 'closed' };
    },
    async getTiered(namespace, key) {
      // Only a dirty change matters to `reconcile`; with none held, the lookup is skipped.
      const before = local.dirtyCount > 0 ? local.lookup(namespace, key) : nothingKnown;
      const fromRedis = await call('get', () => inner.get(namespace, key), true);
      if (fromRedis !== failed) {
        if (local.dirtyCount > 0) nudge();
        return reconcile(namespace, key, before, fromRedis);
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
      const before = new Map(unique.map((key) => [key, local.lookup(namespace, key)]));
      const fromRedis = await call('batch_get', () => inner.getMany(namespace, unique), true);
      const found = new Map<string, StoredEntry>();
      let degraded = fromRedis === failed;
      for (const key of unique) {
        const read =
          fromRedis === failed
            ? fallback(namespace, key)
            : reconcile(namespace, key, before.get(key)!, fromRedis.get(key) ?? null);
        if (read?.entry) found.set(key, read.entry);
        degraded ||= read?.degraded ?? false;
      }
      if (fromRedis === failed) stats.fallbackHits += found.size;
      return { found, tier: fromRedis === failed ? 'origin-local' : inner.kind, degraded };
    },
    async get(namespace, key) {
      return (await store.getTiered(namespace, key)).entry;
    },
    async getMany(namespace, keys) {
      return (await store.getManyTiered(namespace, keys)).found;
    },
    set: (namespace, key, input) =>
      exclusive(namespace, [key], async () => {
        const written = await call('set', () => inner.set(namespace, key, input).catch(answered), false);
        if (written instanceof Error) throw written;
        if (written === failed && input.leaseId !== undefined) {
          // Only Redis knows who holds the lease; the local tier cannot take a lease's write.
          throw unavailable('set', 'Store unavailable: a write under a refresh lease needs Redis');
        }
        if (written === failed) return writeLocally(namespace, key, input);
        seen(namespace, key, written.version);
        local.discardDirty(namespace, key);
        local.putClean(namespace, key, written);
        return written;
      }),
    setMany: (namespace, entries) =>
      exclusive(namespace, [...entries.keys()], async () => {
        const written = await call('batch_set', () => inner.setMany(namespace, entries).catch(answered), false);
        if (written instanceof Error) throw written;
        if (written === failed) {
          return new Map([...entries].map(([key, input]) => [key, writeLocally(namespace, key, input)]));
        }
        for (const [key, entry] of written) {
          seen(namespace, key, entry.version);
          local.discardDirty(namespace, key);
          local.putClean(namespace, key, entry);
        }
        return written;
      }),
    delete: (namespace, key, once) =>
      exclusive(namespace, [key], async () => {
        const removed = await call('delete', () => inner.delete(namespace, key, once).catch(answered), false);
        if (removed instanceof Error) throw removed;
        if (removed === failed) return deleteLocally(namespace, key);
        seen(namespace, key, removed.version);
        local.discardDirty(namespace, key);
        local.dropClean(namespace, key);
        return removed;
      }),
    purge: (namespace, selector: PurgeSelector) =>
      exclusive(namespace, selector.keys, async () => {
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
        for (const key of new Set([...doomed, ...selector.keys])) {
          seen(namespace, key, result.version);
          local.discardDirty(namespace, key);
          local.dropClean(namespace, key);
        }
        return result;
      }),
    // A listing reads Redis only (changes held in the local tier are not listed): unavailable while it is down.
    ...(inner.listKeys
      ? {
          async listKeys(namespace: string, request: KeyListRequest) {
            const page = await call('list', () => inner.listKeys!(namespace, request), true);
            if (page === failed) throw unavailable('list', 'Store unavailable: listing keys needs Redis');
            return page;
          },
        }
      : {}),
    ...(inner.swap
      ? {
          swap: (namespace: string, changes: readonly SwapChange[]) =>
            exclusive(
              namespace,
              changes.map((c) => c.key),
              async () => {
                const swap = inner.swap!.bind(inner);
                const outcome = await call('swap', () => swap(namespace, changes), false);
                // A conditional write needs Redis's answer: it is never accepted into the local tier.
                if (outcome === failed) throw unavailable('swap', 'Store unavailable: a conditional write needs Redis');
                if (outcome.kind !== 'swapped') return outcome;
                for (const [key, result] of outcome.results) {
                  seen(namespace, key, result.version);
                  local.discardDirty(namespace, key);
                  if ('value' in result) local.putClean(namespace, key, result);
                  else local.dropClean(namespace, key);
                }
                return outcome;
              },
            ),
        }
      : {}),
    async grantLease(namespace, key, id, leaseMs, seenVersion) {
      if (!inner.grantLease) return null;
      const granted = await call('lease', () => inner.grantLease!(namespace, key, id, leaseMs, seenVersion), true);
      return granted === failed ? null : granted;
    },
    async ping() {
      await breaker.run(async (signal) => {
        await ready(signal);
        await inner.ping();
      }, true);
    },
    async close() {
      await recovery.close();
      await inner.close();
    },
  };
  return store;
}

/** Floors kept before the ones the clock has passed are pruned. */
const maxFloors = 1024;

/** A change accepted locally that Redis had not confirmed; `entry` null for a delete. */
interface Pending {
  readonly version: number;
  readonly entry: StoredEntry | null;
}

/** A lookup that found nothing (no dirty change, no clean copy). */
const nothingKnown: LocalLookup = { kind: 'unknown' };

function pending(known: LocalLookup): Pending | null {
  if (known.kind === 'dirty-set') return { version: known.entry.version, entry: known.entry };
  if (known.kind === 'dirty-delete') return { version: known.version, entry: null };
  return null;
}

function newest(a: Pending | null, b: Pending | null): Pending | null {
  if (!a || !b) return a ?? b;
  return b.version >= a.version ? b : a;
}

const failed: unique symbol = Symbol('failed');
type Failed = typeof failed;
