import type { Cluster, Redis } from 'ioredis';

/**
 * The per-namespace lexicographic key index of the Redis drivers: a sorted
 * set of entry keys, all at score 0 so `ZRANGEBYLEX` reads a key range
 * (Redis docs, "Sorted sets: lexicographical scores"), beside a sorted set of
 * the same members scored by expiry (Unix ms) so expired members are
 * dropped a few at a time by later writes. A prefix purge reads the range
 * instead of walking the keyspace with `SCAN`.
 *
 * Both sets are kept by the same Lua script as every write and delete
 * ({@link withKeyIndex}), so the index never disagrees with a change Redis
 * acknowledged. One pair per namespace, `strata:i:{ns}` and `strata:ie:{ns}`,
 * on a standalone server (and a Sentinel master); on a Redis Cluster one
 * pair per namespace and hash slot, with a registry of the slots in use
 * (`redis-cluster-key-index.ts`). A namespace flush's reclaimer takes the
 * entries it unlinks out of the index too (`redis-namespaces.ts`).
 *
 * Entries written before the index existed are not in it: they leave by
 * their TTL, or by a namespace flush.
 */

/** Expired members dropped per write, at most (bounds a write's extra work). */
export const indexCleanupPerWrite = 10;

/**
 * Lua: `indexEntry(entry, byKey, byExpiry)` puts an entry key in the index
 * pair while it is an entry, scored by the end of its grace (it is served
 * stale until then, so a prefix purge must still find it), and takes it out
 * otherwise (deleted, or a tombstone).
 */
const indexEntryLua = `
local function indexEntry(k, byKey, byExpiry)
  local g = redis.call('HMGET', k, 'e', 'w', 'i')
  if g[1] then
    local keep = tonumber(g[1]) + math.max(tonumber(g[2] or '0'), tonumber(g[3] or '0'))
    redis.call('ZADD', byKey, 0, k)
    redis.call('ZADD', byExpiry, keep, k)
  else
    redis.call('ZREM', byKey, k)
    redis.call('ZREM', byExpiry, k)
  end
end`;

/**
 * Wraps a write or delete script (whose KEYS[1] is the entry) so that after
 * it runs the index pair in KEYS[2] (by key) and KEYS[3] (by expiry) holds
 * KEYS[1] exactly when it is a live entry, then drops up to
 * {@link indexCleanupPerWrite} expired members. The script's own `return`s
 * end the inner function only; its reply is passed through unchanged.
 */
export function withKeyIndex(script: string): string {
  return `
local function body()
${script}
end
local reply = body()
${indexEntryLua}
indexEntry(KEYS[1], KEYS[2], KEYS[3])
local it = redis.call('TIME')
local nowms = tonumber(it[1]) * 1000 + math.floor(tonumber(it[2]) / 1000)
-- A member scored at or before now has expired: every rewrite moves its score to the new expiry.
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', nowms, 'LIMIT', 0, ${indexCleanupPerWrite})
if #gone > 0 then
  redis.call('ZREM', KEYS[2], unpack(gone))
  redis.call('ZREM', KEYS[3], unpack(gone))
end
return reply
`;
}

/**
 * The swap script (`swapScript`) on a standalone server, keeping the key
 * index as {@link withKeyIndex} does for the single-key scripts: the index
 * pair (by key, by expiry) comes after the entry keys, and after a swap
 * every entry key is added to or removed from the index as it now stands.
 * A conflict changes nothing, the index included.
 */
export function withSwapKeyIndex(swap: string): string {
  return `
local n = #KEYS - 2
local EK = {}
for i = 1, n do EK[i] = KEYS[i] end
local byKey, byExpiry = KEYS[n + 1], KEYS[n + 2]
local function body()
${swap.replaceAll('ipairs(KEYS)', 'ipairs(EK)')}
end
local reply = body()
if reply[1] ~= 1 then return reply end
${indexEntryLua}
for _, k in ipairs(EK) do indexEntry(k, byKey, byExpiry) end
return reply
`;
}

/** True for an ioredis Cluster client. */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return client.isCluster === true;
}

/** The index pair of a standalone server: `[by key, by expiry]`. */
export function standaloneIndexKeys(namespace: string): [string, string] {
  return [`strata:i:{${namespace}}`, `strata:ie:{${namespace}}`];
}

/** The namespace of an entry key (`strata:e:{namespace}:{key}`; namespaces hold no `:`). */
function namespaceOfEntryKey(entryKey: string): string {
  return entryKey.slice(9, entryKey.indexOf(':', 9));
}

/** The index pair an entry key's script touches on a standalone server. */
export function indexKeysOf(entryKey: string): [string, string] {
  return standaloneIndexKeys(namespaceOfEntryKey(entryKey));
}

/**
 * `ZRANGEBYLEX` bounds of the entry keys starting with `prefix`: from the
 * prefix (inclusive) to the prefix followed by byte 0xFF (exclusive), a
 * byte no UTF-8 key contains, so every longer key sorts below it.
 */
export function lexRange(entryKeyPrefix: string): [Buffer, Buffer] {
  return [Buffer.from(`[${entryKeyPrefix}`), Buffer.concat([Buffer.from(`(${entryKeyPrefix}`), Buffer.from([0xff])])];
}
