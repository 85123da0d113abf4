import type { Cluster, Redis } from 'ioredis';
import { type NamespaceVersion, type NamespaceVersionStore, namespaceHistoryLimit } from '../namespaces/versions.ts';
import { slotIndexKeysOf } from './redis-cluster-key-index.ts';
import { entryKey } from './redis-codec.ts';
import { escapeGlob } from './redis-commands.ts';
import { indexKeysOf } from './redis-key-index.ts';
import { OnceConflictError } from './store.ts';

/**
 * Bookkeeping keys of namespace versions. Both carry the hash tag
 * `{strata-ns}`: one slot on a Cluster, apart from the entries (entry keys
 * carry no hash tag), so a bump is one atomic script and reads never touch it.
 */
export const namespaceVersionKeys = {
  /** Hash: namespace → current version record (`version|flushedAtMs|by`). */
  current: 'strata:{strata-ns}:current',
  /** List per namespace, newest first, trimmed to {@link namespaceHistoryLimit}. */
  history: (namespace: string) => `strata:{strata-ns}:history:${namespace}`,
  /** Hash: namespace → the highest version below which every entry was reclaimed (unlinked). */
  reclaimed: 'strata:{strata-ns}:reclaimed',
  /** String per namespace: the replica walking it now (a lease with a TTL). */
  reclaiming: (namespace: string) => `strata:{strata-ns}:reclaiming:${namespace}`,
  /** String per request id and namespace: the idempotency record of a flush (`OnceRecord`), written by the bump. */
  once: (id: string, namespace: string) => `strata:{strata-ns}:once:${id}:${namespace}`,
} as const;

/**
 * KEYS[1] current hash, KEYS[2] history list; ARGV: namespace, by, minimum,
 * history limit. Version = `max(previous + 1, TIME µs, minimum)` from the
 * server's own clock, like entry versions (`redis-scripts.ts`). Returns the record.
 */
const bumpScript = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
local pv = 0
if prev then pv = tonumber(string.match(prev, '^(%d+)')) end
local t = redis.call('TIME')
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = math.max(pv + 1, nowus, tonumber(ARGV[3]))
local rec = string.format('%.0f', v) .. '|' .. math.floor(nowus / 1000) .. '|' .. ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], rec)
redis.call('LPUSH', KEYS[2], rec)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
return rec
`;

/**
 * `bumpScript` at most once per request id: KEYS[3] the record key (same
 * `{strata-ns}` slot), ARGV[5] the request's fingerprint, ARGV[6] the
 * record's TTL ms (the record is `fingerprint|version record`; fingerprints
 * hold no `|`). A record of the same fingerprint returns the recorded
 * version record without bumping; one of another fingerprint returns `!`.
 */
const bumpOnceScript = `
local seen = redis.call('GET', KEYS[3])
if seen then
  local fp, rec = string.match(seen, '^([^|]*)|(.*)$')
  if fp ~= ARGV[5] then return '!' end
  return rec
end
local function bump()
${bumpScript}
end
local rec = bump()
redis.call('SET', KEYS[3], ARGV[5] .. '|' .. rec, 'PX', math.max(1, math.ceil(tonumber(ARGV[6]))))
return rec
`;

function decode(namespace: string, record: string): NamespaceVersion {
  const [version, at, ...by] = record.split('|');
  return { namespace, version: Number(version), flushedAtMs: Number(at), by: by.join('|') };
}

/**
 * Namespace versions on Redis standalone or Cluster: one bookkeeping hash and
 * one capped history list per namespace, bumped by one Lua script.
 * Errors: rejects with ioredis's errors (CACHE_005 above).
 */
export function redisNamespaceVersions(client: Redis | Cluster): NamespaceVersionStore {
  return {
    async bump(namespace, by, minimum, once) {
      const { current, history } = namespaceVersionKeys;
      const args = [namespace, by, String(minimum), String(namespaceHistoryLimit)];
      const record = once
        ? ((await client.eval(
            bumpOnceScript,
            3,
            current,
            history(namespace),
            namespaceVersionKeys.once(once.id, namespace),
            ...args,
            once.fingerprint,
            String(once.ttlMs),
          )) as string)
        : ((await client.eval(bumpScript, 2, current, history(namespace), ...args)) as string);
      if (record === '!') throw new OnceConflictError(`namespace ${namespace}`);
      return decode(namespace, record);
    },
    async all() {
      const all = await client.hgetall(namespaceVersionKeys.current);
      return new Map(Object.entries(all).map(([namespace, record]) => [namespace, decode(namespace, record)]));
    },
    async history(namespace) {
      const records = await client.lrange(namespaceVersionKeys.history(namespace), 0, namespaceHistoryLimit - 1);
      return records.map((r) => decode(namespace, r));
    },
  };
}

/** The memory footprint of a Redis deployment, summed over its masters. */
export interface RedisFootprint {
  /** `used_memory`, bytes. */
  readonly memoryBytes: number;
  /** `maxmemory`, bytes; null when unlimited (0). */
  readonly limitBytes: number | null;
  /** Keys held (`DBSIZE`), entries, tag sets and tombstones alike. */
  readonly keys: number;
  /** `evicted_keys` since the server started. */
  readonly evictions: number;
}

/** Reads `INFO memory`, `INFO stats` and `DBSIZE` from a standalone server or every Cluster master. */
export async function redisFootprint(client: Redis | Cluster): Promise<RedisFootprint> {
  const nodes: Redis[] =
    'nodes' in client && typeof client.nodes === 'function' ? client.nodes('master') : [client as Redis];
  const per = await Promise.all(
    nodes.map(async (node) => {
      const [memory, stats, keys] = await Promise.all([node.info('memory'), node.info('stats'), node.dbsize()]);
      const field = (text: string, name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(text)?.[1] ?? 0);
      return {
        memoryBytes: field(memory, 'used_memory'),
        limitBytes: field(memory, 'maxmemory'),
        keys,
        evictions: field(stats, 'evicted_keys'),
      };
    }),
  );
  const sum = (f: (p: (typeof per)[number]) => number) => per.reduce((a, p) => a + f(p), 0);
  const limit = per.every((p) => p.limitBytes > 0) ? sum((p) => p.limitBytes) : null;
  return {
    memoryBytes: sum((p) => p.memoryBytes),
    limitBytes: limit,
    keys: sum((p) => p.keys),
    evictions: sum((p) => p.evictions),
  };
}

/**
 * KEYS[1] entry, KEYS[2..3] its key-index pair (same slot on a Cluster); ARGV[1] namespace version.
 * Unlinks the entry when written before the flush, and takes it out of the key index. Returns 1 when unlinked.
 */
const unlinkIfOlderScript = `
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v < tonumber(ARGV[1]) then
  redis.call('UNLINK', KEYS[1])
  redis.call('ZREM', KEYS[2], KEYS[1])
  redis.call('ZREM', KEYS[3], KEYS[1])
  return 1
end
return 0
`;

/** KEYS[1] the reclaimed hash; ARGV: namespace, version. Records the version unless a higher one is there. */
const markReclaimedScript = `
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
`;

/** KEYS[1] a reclaim lease; ARGV[1] its holder. Deletes the lease only while this holder has it. */
const releaseLeaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

/** Name of the reclaimer's own connection (`CLIENT LIST`). */
export const reclaimConnectionName = 'strata-reclaim';

/** Options of {@link startRedisReclaimer}. */
export interface RedisReclaimerOptions {
  /** The store's client; the reclaimer never sends on it, it opens a connection of its own from it. */
  readonly client: Redis | Cluster;
  /** Every flushed namespace's version as this origin knows it (`NamespaceRegistry.floors`). */
  readonly floors: () => ReadonlyMap<string, number>;
  /**
   * Redis calls per second at most (one SCAN page of up to 100 keys, or one
   * entry checked and unlinked, is one call); one call in flight at a time.
   */
  readonly callsPerSecond: number;
  /** Time between looks at the floors when there is nothing to do, ms (default 1000). No Redis call is made then. */
  readonly idleMs?: number;
  /** Lease on one namespace's reclaim, so one replica walks it at a time, ms (default 30 000; renewed per SCAN page). */
  readonly leaseMs?: number;
  /** Told about a failed pass (retried on a later round). */
  readonly onError?: (error: unknown) => void;
}

/** A running reclaimer. */
export interface RedisReclaimer {
  /** Entries unlinked so far. */
  readonly reclaimed: number;
  /** Redis calls made so far (SCAN pages, entry checks, bookkeeping). */
  readonly calls: number;
  /** Resolves at the end of the next round that found nothing left to reclaim (its own connection closed). */
  idle(): Promise<void>;
  /** Stops after the current call; resolves when stopped and its connection is closed. */
  stop(): Promise<void>;
}

function isCluster(client: Redis | Cluster): client is Cluster {
  return client.isCluster;
}

/**
 * A connection of the reclaimer's own, with the store client's settings,
 * ready to use; gives up (and closes it) after `timeoutMs` or when `signal`
 * aborts, so a reclaimer never waits on a store that is down.
 */
async function openReclaimConnection(
  client: Redis | Cluster,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Redis | Cluster> {
  const own = isCluster(client)
    ? client.duplicate([], {
        enableAutoPipelining: false,
        redisOptions: { ...client.options.redisOptions, connectionName: reclaimConnectionName },
      })
    : client.duplicate({ enableAutoPipelining: false, connectionName: reclaimConnectionName });
  own.on('error', () => {});
  if (own.status === 'ready') return own;
  try {
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        clearTimeout(timer);
        own.off('ready', onReady);
        own.off('end', onEnd);
        signal.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => settle();
      const onEnd = () => settle(new Error('reclaim connection closed before it was ready'));
      const onAbort = () => settle(new Error('reclaimer stopped'));
      const timer = setTimeout(
        () => settle(new Error(`reclaim connection not ready after ${timeoutMs} ms`)),
        timeoutMs,
      );
      own.once('ready', onReady);
      own.once('end', onEnd);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
    });
  } catch (error) {
    own.disconnect();
    throw error;
  }
  return own;
}

/**
 * Reclaims flushed entries lazily, once per flush across all replicas. Reads
 * and writes never wait for it and never share its connection: a connection
 * of its own (named {@link reclaimConnectionName}, without auto-pipelining)
 * is opened only while there is work and closed when there is none, so a
 * foreground command is never batched with, or queued behind, a reclaim
 * call. With no flush newer than what this replica has seen reclaimed, a
 * round makes no Redis call at all.
 *
 * A namespace is walked only when its version rose above the version
 * recorded as reclaimed in `strata:{strata-ns}:reclaimed` (shared by every
 * replica and kept across restarts), under a lease so one replica walks it
 * at a time. The walk SCANs that namespace's entry keys on every master and
 * UNLINKs those below the namespace version, checked and unlinked in one
 * script so an entry rewritten meanwhile stays; entries of other namespaces
 * and of the current version are never touched. At most `callsPerSecond`
 * calls a second, one at a time.
 */
export function startRedisReclaimer(options: RedisReclaimerOptions): RedisReclaimer {
  const idleMs = options.idleMs ?? 1_000;
  const leaseMs = options.leaseMs ?? 30_000;
  const holder = `${process.pid}-${crypto.randomUUID()}`;
  const { reclaimed: reclaimedKey, reclaiming } = namespaceVersionKeys;
  // Per namespace, the version this replica knows to be reclaimed (by it or another replica).
  const done = new Map<string, number>();
  const stopping = new AbortController();
  let own: Redis | Cluster | undefined;
  let stopped = false;
  let reclaimed = 0;
  let calls = 0;
  let budget = options.callsPerSecond;
  let windowStart = Date.now();
  // Sleeps end early on stop; the idle sleep also when someone waits for `idle()` (the budget sleep never).
  const sleepers = new Set<() => void>();
  let wakeIdle: (() => void) | undefined;
  let idleWaiters: (() => void)[] = [];
  const pause = (ms: number, onIdle = false) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        if (wakeIdle === done) wakeIdle = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref?.();
      sleepers.add(done);
      if (onIdle) wakeIdle = done;
    });
  const call = async <T>(run: () => Promise<T>): Promise<T> => {
    if (budget <= 0) {
      await pause(Math.max(0, windowStart + 1000 - Date.now()));
      budget = options.callsPerSecond;
      windowStart = Date.now();
    }
    if (stopped) throw new Error('reclaimer stopped');
    budget--;
    calls++;
    return await run();
  };
  const close = async () => {
    const connection = own;
    own = undefined;
    if (!connection) return;
    // QUIT waits behind queued commands while reconnecting: only a ready connection is closed politely.
    if (connection.status === 'ready') await connection.quit().catch(() => connection.disconnect());
    else connection.disconnect();
  };
  const masters = (connection: Redis | Cluster): Redis[] =>
    isCluster(connection) ? connection.nodes('master') : [connection];

  async function pass(connection: Redis | Cluster, namespace: string, floor: number): Promise<boolean> {
    const match = `${escapeGlob(entryKey(namespace, ''))}*`;
    for (const node of masters(connection)) {
      let cursor = '0';
      do {
        const [next, keys] = await call(() => node.scan(cursor, 'MATCH', match, 'COUNT', 100));
        cursor = next;
        await call(() => connection.pexpire(reclaiming(namespace), leaseMs));
        for (const key of keys) {
          if (stopped) return false;
          const index = isCluster(connection) ? slotIndexKeysOf(key) : indexKeysOf(key);
          reclaimed += Number(await call(() => connection.eval(unlinkIfOlderScript, 3, key, ...index, String(floor))));
        }
      } while (cursor !== '0' && !stopped);
    }
    return !stopped;
  }

  async function round(pending: [string, number][]): Promise<void> {
    own ??= await openReclaimConnection(options.client, stopping.signal, 5_000);
    const connection = own;
    const recorded = await call(() => connection.hgetall(reclaimedKey));
    for (const [namespace, floor] of pending) {
      if (stopped) return;
      if (Number(recorded[namespace] ?? 0) >= floor) {
        done.set(namespace, floor);
        continue;
      }
      // Another replica holds the lease: look again next round.
      const leased = await call(() => connection.set(reclaiming(namespace), holder, 'PX', leaseMs, 'NX'));
      if (leased !== 'OK') continue;
      try {
        if (await pass(connection, namespace, floor)) {
          await call(() => connection.eval(markReclaimedScript, 1, reclaimedKey, namespace, String(floor)));
          done.set(namespace, floor);
        }
      } finally {
        await call(() => connection.eval(releaseLeaseScript, 1, reclaiming(namespace), holder));
      }
    }
  }

  const loop = (async () => {
    while (!stopped) {
      const pending = [...options.floors()].filter(([namespace, floor]) => (done.get(namespace) ?? 0) < floor);
      if (pending.length > 0) {
        try {
          await round(pending);
        } catch (error) {
          if (!stopped) options.onError?.(error);
          await close();
        }
      } else {
        await close();
        for (const resolve of idleWaiters.splice(0)) resolve();
      }
      if (!stopped) await pause(idleMs, true);
    }
    await close();
  })();

  return {
    get reclaimed() {
      return reclaimed;
    },
    get calls() {
      return calls;
    },
    idle() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        wakeIdle?.();
      });
    },
    async stop() {
      stopped = true;
      stopping.abort();
      for (const wake of [...sleepers]) wake();
      await loop;
      for (const resolve of idleWaiters.splice(0)) resolve();
      idleWaiters = [];
    },
  };
}
