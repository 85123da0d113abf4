import calculateSlot from 'cluster-key-slot';
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
 * acknowledged. A script on a Cluster may only touch keys of one hash slot,
 * and entry keys carry no hash tag (entries spread over every master), so:
 *
 * - standalone (and Sentinel): one pair per namespace, `strata:i:{ns}` and
 *   `strata:ie:{ns}`;
 * - Cluster: one pair per namespace and hash slot, whose hash tag is a short
 *   string that hashes to the entry's own slot (`strata:i:{tag}:ns`). A
 *   prefix purge reads the namespace's index in every slot, one pipeline per
 *   master (Redis Cluster specification, "Hash tags").
 *
 * Entries written before the index existed are not in it: they leave by
 * their TTL, or by a namespace flush.
 */

/** Expired members dropped per write, at most (bounds a write's extra work). */
export const indexCleanupPerWrite = 10;

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
local e = redis.call('HGET', KEYS[1], 'e')
if e then
  redis.call('ZADD', KEYS[2], 0, KEYS[1])
  redis.call('ZADD', KEYS[3], tonumber(e), KEYS[1])
else
  redis.call('ZREM', KEYS[2], KEYS[1])
  redis.call('ZREM', KEYS[3], KEYS[1])
end
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

/** Number of hash slots of a Redis Cluster. */
const slotCount = 16384;

let slotTags: string[] | undefined;

/**
 * A short string per hash slot that hashes to that slot (base-36 counters,
 * first found wins): about 160,000 CRC16s, computed once on first use.
 */
function tagOfSlot(slot: number): string {
  if (!slotTags) {
    const tags = new Array<string>(slotCount);
    let found = 0;
    for (let i = 0; found < slotCount; i++) {
      const tag = i.toString(36);
      const s = calculateSlot(tag);
      if (tags[s] === undefined) {
        tags[s] = tag;
        found++;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot]!;
}

/** True for an ioredis Cluster client. */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return client.isCluster === true;
}

/** The index pair of a standalone server: `[by key, by expiry]`. */
export function standaloneIndexKeys(namespace: string): [string, string] {
  return [`strata:i:{${namespace}}`, `strata:ie:{${namespace}}`];
}

/** The index pair of a namespace in one Cluster hash slot: `[by key, by expiry]`. */
export function slotIndexKeys(namespace: string, slot: number): [string, string] {
  const tag = tagOfSlot(slot);
  return [`strata:i:{${tag}}:${namespace}`, `strata:ie:{${tag}}:${namespace}`];
}

/** The namespace of an entry key (`strata:e:{namespace}:{key}`; namespaces hold no `:`). */
function namespaceOfEntryKey(entryKey: string): string {
  return entryKey.slice(9, entryKey.indexOf(':', 9));
}

/** The index pair an entry key's script must touch, for the kind of client. */
export function indexKeysOf(clustered: boolean, entryKey: string): [string, string] {
  const namespace = namespaceOfEntryKey(entryKey);
  return clustered ? slotIndexKeys(namespace, calculateSlot(entryKey)) : standaloneIndexKeys(namespace);
}

/**
 * `ZRANGEBYLEX` bounds of the entry keys starting with `prefix`: from the
 * prefix (inclusive) to the prefix followed by byte 0xFF (exclusive), a
 * byte no UTF-8 key contains, so every longer key sorts below it.
 */
export function lexRange(entryKeyPrefix: string): [Buffer, Buffer] {
  return [Buffer.from(`[${entryKeyPrefix}`), Buffer.concat([Buffer.from(`(${entryKeyPrefix}`), Buffer.from([0xff])])];
}

/**
 * The set of hash slots in which a namespace has (or had) an index on a
 * Cluster, so a prefix purge reads those slots' indexes, not all 16,384.
 * A slot is added before the first write to it (an extra slot is harmless,
 * a missing one is not); it stays after the slot empties.
 */
export function slotRegistryKey(namespace: string): string {
  return `strata:is:{${namespace}}`;
}

/** How long a process trusts that a slot it registered is still in the registry, milliseconds. */
const registrationTrustMs = 60_000;

/** One `SADD` of hash slots into a namespace's {@link slotRegistryKey}. */
export interface SlotRegistration {
  readonly registry: string;
  readonly slots: readonly number[];
}

/**
 * Which hash slots of entry keys still need registering in their namespace's
 * {@link slotRegistryKey} (send those with, or before, the writes), and
 * remembers acknowledged registrations for a minute, so steady writes cost
 * no extra command.
 */
export function slotRegistrar(): {
  due(entryKeys: readonly string[]): SlotRegistration[];
  done(registrations: readonly SlotRegistration[]): void;
} {
  const registered = new Map<string, number>();
  const id = (registry: string, slot: number) => `${registry}\u0000${slot}`;
  return {
    due(entryKeys) {
      const now = Date.now();
      const pending = new Map<string, Set<number>>();
      for (const k of entryKeys) {
        const registry = slotRegistryKey(namespaceOfEntryKey(k));
        const slot = calculateSlot(k);
        if ((registered.get(id(registry, slot)) ?? 0) > now - registrationTrustMs) continue;
        const slots = pending.get(registry) ?? new Set<number>();
        slots.add(slot);
        pending.set(registry, slots);
      }
      return [...pending].map(([registry, slots]) => ({ registry, slots: [...slots] }));
    },
    done(registrations) {
      const now = Date.now();
      for (const { registry, slots } of registrations)
        for (const slot of slots) registered.set(id(registry, slot), now);
    },
  };
}
