import type { Cluster, Redis } from 'ioredis';
import { storageKey } from '../../shared/keys.ts';
import { keepUntilMs } from '../../shared/lifecycle.ts';
import type { RedisBreaker } from '../breaker.ts';
import type { PurgeInput } from '../purge/bus.ts';
import type { DirtyChange, LocalTier } from './local-tier.ts';
import { slotIndexKeysOf, slotRegistrar } from './redis-cluster-key-index.ts';
import { entryKey, graceArgs, tagSetKey } from './redis-codec.ts';
import {
  asBuffer,
  defineIndexedStrataCommands,
  type IndexedStrataCommands,
  type StrataCommands,
} from './redis-commands.ts';
import { isCluster, standaloneIndexKeys } from './redis-key-index.ts';
import { tombstoneTtlMs } from './redis-scripts.ts';
import type { ResilienceStats, StoredEntry } from './store.ts';

/**
 * Conditional writes used to replay the local tier's dirty entries after an
 * outage. Both compare versions inside one Lua script on the key's master
 * (`redis-scripts.ts`), so nothing newer in Redis is ever overwritten or
 * deleted, whichever origin wrote it.
 */
export interface WriteBack {
  /**
   * Writes `entry` with its own version, expiry and creation time, only when
   * Redis holds no entry or an older version, and the entry has not expired.
   * @returns true when written, false when Redis held a newer or equal version.
   */
  setIfNewer(namespace: string, key: string, entry: StoredEntry): Promise<boolean>;
  /**
   * Deletes the key only when Redis holds a version below `version` (a
   * tombstone of a delete accepted during the outage).
   * @returns true when Redis held an older entry that is now gone.
   */
  deleteIfOlder(namespace: string, key: string, version: number): Promise<boolean>;
}

/**
 * {@link WriteBack} on an ioredis standalone or Cluster client that has the
 * Strata scripts defined (`defineStrataCommands`).
 *
 * Errors: rejects with the client's errors; callers keep the entry dirty.
 */
export function redisWriteBack(client: (Redis | Cluster) & StrataCommands): WriteBack {
  // The namespace's key index is kept by the same scripts (`redis-key-index.ts`): one pair on a
  // standalone server, one per hash slot on a Cluster (`redis-cluster-key-index.ts`).
  const indexed = client as unknown as (Redis | Cluster) & IndexedStrataCommands;
  defineIndexedStrataCommands(indexed);
  const clustered = isCluster(client);
  const indexKeys = (namespace: string, k: string) => (clustered ? slotIndexKeysOf(k) : standaloneIndexKeys(namespace));
  const registrar = slotRegistrar();
  return {
    async setIfNewer(namespace, key, entry) {
      const k = entryKey(namespace, key);
      if (clustered) {
        // The slot is registered before the write, as the Cluster driver does, so a prefix purge finds the key.
        const due = registrar.due([k]);
        for (const { registry, slots } of due) await client.sadd(registry, ...slots);
        registrar.done(due);
      }
      const args = [
        asBuffer(entry.value),
        entry.contentType,
        entry.expiresAtMs,
        entry.tags.join(','),
        entry.version,
        entry.createdAtMs,
        ...graceArgs(entry),
      ] as const;
      const written = await indexed.strataSetIfNewerIndexed(k, ...indexKeys(namespace, k), ...args);
      if (Number(written) === 1 && entry.tags.length > 0) {
        const ttlMs = Math.max(1, keepUntilMs(entry) - Date.now());
        await Promise.all(
          entry.tags.map(async (tag) => {
            const set = tagSetKey(namespace, tag);
            await client.sadd(set, k);
            await client.pexpire(set, ttlMs, 'GT');
            await client.pexpire(set, ttlMs, 'NX');
          }),
        );
      }
      return Number(written) === 1;
    },
    async deleteIfOlder(namespace, key, version) {
      const k = entryKey(namespace, key);
      const [removed] = await indexed.strataDeleteIfOlderIndexed(
        k,
        ...indexKeys(namespace, k),
        version,
        tombstoneTtlMs,
      );
      return Number(removed) === 1;
    },
  };
}

/**
 * Wraps a {@link WriteBack} so every change it replays also puts its purge
 * in the purge log (`log`, the purge bus's `publish`): a write accepted into
 * the local tier during an outage reaches the edges of every replica once
 * Redis has it. The purge goes out whether or not Redis took the change (a
 * newer version there was purged when it was written; an extra purge with an
 * older floor drops nothing newer). When `log` rejects, so does the call, and
 * the change stays dirty and is replayed (and logged) again.
 */
export function purgeLoggingWriteBack(inner: WriteBack, log: (purge: PurgeInput) => Promise<unknown>): WriteBack {
  const purge = (namespace: string, key: string, version: number, action: PurgeInput['action']) =>
    log({ namespace, keys: [key], tags: [], prefix: null, version, action, ts: Date.now() });
  return {
    async setIfNewer(namespace, key, entry) {
      const written = await inner.setIfNewer(namespace, key, entry);
      await purge(namespace, key, entry.version, 'update');
      return written;
    },
    async deleteIfOlder(namespace, key, version) {
      const removed = await inner.deleteIfOlder(namespace, key, version);
      await purge(namespace, key, version, 'delete');
      return removed;
    },
  };
}

/**
 * Runs `run` after every earlier call that named one of the same keys, so
 * changes to a key reach Redis in the order this origin started them.
 */
export type KeySequencer = <T>(namespace: string, keys: readonly string[], run: () => Promise<T>) => Promise<T>;

/** A {@link KeySequencer}: per-key promise chains, dropped once a key has nothing in flight. */
export function keySequencer(): KeySequencer {
  const chains = new Map<string, Promise<unknown>>();
  return async (namespace, keys, run) => {
    const ks = [...new Set(keys.map((key) => storageKey(namespace, key)))];
    const mine = Promise.allSettled(ks.map((k) => chains.get(k))).then(run);
    const tail = mine.catch(() => {});
    for (const k of ks) chains.set(k, tail);
    try {
      return await mine;
    } finally {
      for (const k of ks) if (chains.get(k) === tail) chains.delete(k);
    }
  };
}

/** Options of {@link recoveryLoop}. */
export interface RecoveryLoopOptions {
  readonly breaker: RedisBreaker;
  readonly local: LocalTier;
  readonly writeBack: WriteBack;
  /** Shared with the facade's own writes: a change is never written back concurrently with a newer one. */
  readonly sequence: KeySequencer;
  /**
   * Called once Redis confirmed a change (written back, or skipped because
   * Redis held a newer or equal version): Redis now holds the change's
   * version or a higher one, tombstone included, so a later local change to
   * the key must be stamped above it, even though the local tier forgets the
   * settled change.
   */
  readonly settled: (change: DirtyChange) => void;
  /** Counters `writtenBack` and `skippedNewer` are updated here. */
  readonly stats: ResilienceStats;
  /** Resolves when Redis answers (the half-open probe's call). */
  readonly ping: (signal: AbortSignal) => Promise<void>;
  /** Resolves when the connection is usable; see `ResilientStoreOptions.ready`. */
  readonly ready: (signal: AbortSignal) => Promise<void>;
  /** Milliseconds between background rounds; 0 = no timer, rounds start on {@link RecoveryLoop.nudge}. */
  readonly intervalMs: number;
  readonly onError?: (operation: string, error: unknown) => void;
}

/** The background recovery of the resilient facade. */
export interface RecoveryLoop {
  /**
   * Runs a round — probe an open breaker; once closed, write dirty changes
   * back in acceptance order — or, when one is already in flight (it may have
   * started before Redis came back), one more right after it (at most one is
   * queued). Resolves when that round is done.
   */
  recover(): Promise<void>;
  /** Without a timer, requests start rounds this way (never awaited by the request). */
  nudge(): void;
  /** Stops the timer and waits for the rounds in flight. */
  close(): Promise<void>;
}

/**
 * Recovery after a Redis outage: probes the breaker (half-open after its
 * cool-down) and, once it is closed, replays each dirty change of the local
 * tier with {@link WriteBack.setIfNewer} / {@link WriteBack.deleteIfOlder}, so
 * a newer version in Redis — from any origin — wins. A change is settled
 * (removed from the local tier, so reads stop preferring it) only after Redis
 * confirmed it; a change superseded meanwhile by a write that reached Redis is
 * not replayed. A failed write-back ends the round; the next round retries.
 */
export function recoveryLoop(options: RecoveryLoopOptions): RecoveryLoop {
  const { breaker, local, writeBack, stats, ready } = options;
  let round: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  const needed = () => breaker.state !== 'closed' || local.dirtyCount > 0;

  const timer =
    options.intervalMs > 0
      ? setInterval(() => {
          if (needed()) void recover();
        }, options.intervalMs)
      : null;
  timer?.unref();

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
    if (
      breaker.state !== 'closed' &&
      !(await breaker.probe((signal) => ready(signal).then(() => options.ping(signal))))
    ) {
      return;
    }
    for (const change of local.dirtyChanges()) {
      if (!(await options.sequence(change.namespace, [change.key], () => replay(change)))) return;
    }
  }

  /** Writes one change back; false when Redis failed (the round stops). */
  async function replay(change: DirtyChange): Promise<boolean> {
    // A write that reached Redis meanwhile superseded it: replaying it now could undo that write.
    if (!local.isPending(change)) return true;
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
      // Only now, with the change confirmed in Redis, may reads stop preferring it.
      options.settled(change);
      local.settle(change);
      return true;
    } catch (error) {
      options.onError?.('write_back', error);
      return false;
    }
  }

  return {
    recover,
    nudge() {
      if (timer === null && needed()) void recover();
    },
    async close() {
      if (timer) clearInterval(timer);
      await queued;
      await round;
    },
  };
}
