import calculateSlot from 'cluster-key-slot';
import { badCursor } from './redis-listing.ts';

/*
 * The key index (`redis-key-index.ts`) on a Redis Cluster. A script there may
 * only touch keys of one hash slot, and entry keys carry no hash tag (entries
 * spread over every master), so the index is one pair per namespace and hash
 * slot, hash-tagged to the entry's own slot, and kept by the same script as
 * each write and delete. A registry per namespace names the slots that have
 * an index, so a prefix purge or listing reads those slots, not all 16,384
 * (Redis Cluster specification, "Keys hash tags").
 */

/** Number of hash slots of a Redis Cluster. */
export const slotCount = 16384;

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

/** A short hash tag of the slot `key` hashes to: `{tag}` in another key puts it in the same slot. */
export function slotTagOf(key: string): string {
  return tagOfSlot(calculateSlot(key));
}

/** The index pair of a namespace in one hash slot, `[by key, by expiry]`; both live in that slot. */
export function slotIndexKeys(namespace: string, slot: number): [string, string] {
  const tag = tagOfSlot(slot);
  return [`strata:i:{${tag}}:${namespace}`, `strata:ie:{${tag}}:${namespace}`];
}

/** The namespace of an entry key (`strata:e:{namespace}:{key}`; namespaces hold no `:`). */
function namespaceOfEntryKey(entryKey: string): string {
  return entryKey.slice(9, entryKey.indexOf(':', 9));
}

/** The index pair an entry key's script touches on a Cluster: its namespace's pair in its own slot. */
export function slotIndexKeysOf(entryKey: string): [string, string] {
  return slotIndexKeys(namespaceOfEntryKey(entryKey), calculateSlot(entryKey));
}

/**
 * The set of hash slots in which a namespace has (or had) an index, so a
 * prefix purge reads those slots' indexes, not all 16,384. A slot is added
 * before the first write to it (an extra slot is harmless, a missing one is
 * not); it stays after the slot empties.
 */
export function slotRegistryKey(namespace: string): string {
  return `strata:is:{${namespace}}`;
}

/**
 * How long a process trusts that a slot it registered is still in the
 * registry, milliseconds. Past it the next write registers the slot again,
 * so a registry lost with a failed master (asynchronous replication) is
 * rebuilt by the writes that follow.
 */
export const registrationTrustMs = 60_000;

/** One `SADD` of hash slots into a namespace's {@link slotRegistryKey}. */
export interface SlotRegistration {
  readonly registry: string;
  readonly slots: readonly number[];
}

/** Remembers which slots this process registered, so steady writes cost no extra command. */
export interface SlotRegistrar {
  /** The registrations entry keys still need: send them before (or ahead of, in one pipeline) the writes. */
  due(entryKeys: readonly string[]): SlotRegistration[];
  /** Records registrations Redis acknowledged, trusted for {@link registrationTrustMs}. */
  done(registrations: readonly SlotRegistration[]): void;
}

/** A {@link SlotRegistrar} with its own memory (one per driver or write-back). */
export function slotRegistrar(nowMs: () => number = Date.now): SlotRegistrar {
  const registered = new Map<string, number>();
  const id = (registry: string, slot: number) => `${registry}\u0000${slot}`;
  return {
    due(entryKeys) {
      const now = nowMs();
      const pending = new Map<string, Set<number>>();
      for (const k of entryKeys) {
        const registry = slotRegistryKey(namespaceOfEntryKey(k));
        const slot = calculateSlot(k);
        if ((registered.get(id(registry, slot)) ?? Number.NEGATIVE_INFINITY) > now - registrationTrustMs) continue;
        const slots = pending.get(registry) ?? new Set<number>();
        slots.add(slot);
        pending.set(registry, slots);
      }
      return [...pending].map(([registry, slots]) => ({ registry, slots: [...slots] }));
    },
    done(registrations) {
      const now = nowMs();
      for (const { registry, slots } of registrations)
        for (const slot of slots) registered.set(id(registry, slot), now);
    },
  };
}

/** Where an index listing on a Cluster stands: the slot it is in and the last entry key read there (null: none yet). */
export interface SlotIndexCursor {
  readonly slot: number;
  readonly after: string | null;
}

const slotCursorPattern = /^@([0-9]{1,5})>(.*)$/s;

/** Encodes a {@link SlotIndexCursor} as `@slot>key` (the key as listed, empty for none yet). */
export function encodeSlotIndexCursor(cursor: SlotIndexCursor): string {
  return `@${cursor.slot}>${cursor.after ?? ''}`;
}

/**
 * Decodes a cursor of {@link encodeSlotIndexCursor}; null means a fresh listing.
 * @throws CacheError CACHE_004 for a malformed cursor.
 */
export function decodeSlotIndexCursor(cursor: string | null): SlotIndexCursor {
  if (cursor === null) return { slot: 0, after: null };
  const m = slotCursorPattern.exec(cursor);
  if (!m || Number(m[1]) >= slotCount) throw badCursor(cursor);
  return { slot: Number(m[1]), after: m[2] === '' ? null : m[2]! };
}

/**
 * How many slots one listing call reads: enough that a sparse namespace does
 * not take thousands of empty pages, few enough that slots × `count` members
 * stays near 4,096 members a call whatever the namespace's size.
 */
export function slotsPerListingCall(count: number): number {
  return Math.max(1, Math.min(256, Math.floor(4096 / count)));
}
