import type { Cluster, Redis } from 'ioredis';
import { type NamespaceVersion, type NamespaceVersionStore, namespaceHistoryLimit } from '../namespaces/versions.ts';
import { entryKey } from './redis-codec.ts';
import { escapeGlob } from './redis-commands.ts';

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
    async bump(namespace, by, minimum) {
      const { current, history } = namespaceVersionKeys;
      const record = (await client.eval(
        bumpScript,
        2,
        current,
        history(namespace),
        namespace,
        by,
        String(minimum),
        String(namespaceHistoryLimit),
      )) as string;
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

/** KEYS[1] entry; ARGV[1] namespace version. Unlinks the entry when written before the flush. Returns 1 when unlinked. */
const unlinkIfOlderScript = `
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v < tonumber(ARGV[1]) then redis.call('UNLINK', KEYS[1]) return 1 end
return 0
`;

/** Options of {@link startRedisReclaimer}. */
export interface RedisReclaimerOptions {
  readonly client: Redis | Cluster;
  /** Every flushed namespace's version as this origin knows it (`NamespaceRegistry.floors`). */
  readonly floors: () => ReadonlyMap<string, number>;
  /** Entries examined per second at most (bounds the load a reclaim puts on Redis). */
  readonly keysPerSecond: number;
  /** Told about a failed pass (retried on the next one). */
  readonly onError?: (error: unknown) => void;
}

/** A running reclaimer. */
export interface RedisReclaimer {
  /** Entries unlinked so far. */
  readonly reclaimed: number;
  /** Stops after the current key; resolves when stopped. */
  stop(): Promise<void>;
}

/**
 * Reclaims flushed entries lazily: for each namespace whose version rose
 * since its last pass, SCANs its entry keys on every master and UNLINKs
 * those below the namespace version (checked and unlinked in one script, so
 * an entry rewritten meanwhile stays), at most `keysPerSecond` keys a second.
 */
export function startRedisReclaimer(options: RedisReclaimerOptions): RedisReclaimer {
  const done = new Map<string, number>();
  let stopped = false;
  let reclaimed = 0;
  let budget = options.keysPerSecond;
  let windowStart = Date.now();
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref?.();
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const take = async () => {
    if (budget <= 0) {
      await pause(Math.max(0, windowStart + 1000 - Date.now()));
      budget = options.keysPerSecond;
      windowStart = Date.now();
    }
    budget--;
  };
  const nodes = (): Redis[] =>
    'nodes' in options.client && typeof options.client.nodes === 'function'
      ? options.client.nodes('master')
      : [options.client as Redis];

  async function pass(namespace: string, floor: number): Promise<void> {
    const match = `${escapeGlob(entryKey(namespace, ''))}*`;
    for (const node of nodes()) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 100);
        cursor = next;
        for (const key of keys) {
          if (stopped) return;
          await take();
          reclaimed += Number(await options.client.eval(unlinkIfOlderScript, 1, key, String(floor)));
        }
      } while (cursor !== '0' && !stopped);
    }
  }

  const loop = (async () => {
    while (!stopped) {
      for (const [namespace, floor] of options.floors()) {
        if (stopped || (done.get(namespace) ?? 0) >= floor) continue;
        try {
          await pass(namespace, floor);
          if (!stopped) done.set(namespace, floor);
        } catch (error) {
          options.onError?.(error);
        }
      }
      if (!stopped) await pause(1000);
    }
  })();

  return {
    get reclaimed() {
      return reclaimed;
    },
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
