import {
  createEvictionCache,
  defaultEvictionPolicy,
  type EvictionCounts,
  type EvictionPolicy,
  evictionCounts,
} from '../../shared/eviction/index.ts';
import { namespaceOfStorageKey, storageKey } from '../../shared/keys.ts';
import { nextVersion } from '../../shared/version.ts';
import type { EntryInput, NamespaceUsage, PurgeSelector, RemovalResult, Store, StoredEntry } from './store.ts';

/** Bytes counted per entry on top of key and value, for maps and metadata. */
const entryOverheadBytes = 128;

/** Bytes an entry counts against the budget. */
const sizeOf = (storage: string, entry: StoredEntry) =>
  entry.value.byteLength + storage.length * 2 + entryOverheadBytes;

export interface MemoryStoreOptions {
  /** Byte budget (values + keys + overhead). */
  maxBytes: number;
  /** Which entries go first when the budget is full (`EVICTION_POLICY`); default S3-FIFO. */
  policy?: EvictionPolicy;
  /** Clock in Unix ms; tests pass a fake one. */
  now?: () => number;
}

/**
 * The embedded store: a byte-bounded cache with per-entry TTL and the
 * eviction policy of `options.policy` (shared/eviction/), with
 * a tag index (tag → storage keys) so a tag purge touches only its members.
 * For development and single-process use: it lives and dies with the origin.
 */
export function memoryStore(options: MemoryStoreOptions): Store & {
  readonly size: number;
  readonly bytes: number;
  /** Entries dropped for the byte budget, since start. */
  readonly evictions: number;
  /** Entries dropped for the budget (`evict`) or found past their TTL (`expire`), since start. */
  readonly evictionsByReason: EvictionCounts;
  readonly policy: EvictionPolicy;
  namespaceUsage(namespace: string, floor: number): NamespaceUsage;
} {
  const now = options.now ?? Date.now;
  const tagIndex = new Map<string, Set<string>>();
  // Store-wide high-water mark: a key deleted and rewritten within one
  // millisecond still gets a higher version than before.
  let lastVersion = 0;
  const evicted = evictionCounts();
  const policy = options.policy ?? defaultEvictionPolicy;
  const stamp = (previous: number, t: number) => {
    lastVersion = nextVersion(Math.max(previous, lastVersion), t);
    return lastVersion;
  };
  const cache = createEvictionCache<StoredEntry>(policy, {
    maxBytes: options.maxBytes,
    now,
    onDispose: (entry, key, reason) => {
      unindex(key, entry.tags);
      evicted.count(reason);
    },
  });

  const sk = storageKey;
  const tagKey = storageKey;

  function unindex(storage: string, tags: readonly string[]): void {
    const namespace = namespaceOfStorageKey(storage);
    for (const tag of tags) {
      const members = tagIndex.get(tagKey(namespace, tag));
      members?.delete(storage);
      if (members?.size === 0) tagIndex.delete(tagKey(namespace, tag));
    }
  }

  function live(storage: string): StoredEntry | null {
    const entry = cache.get(storage);
    if (!entry) return null;
    if (entry.expiresAtMs <= now()) {
      cache.delete(storage);
      return null;
    }
    return entry;
  }

  function write(namespace: string, key: string, input: EntryInput): StoredEntry {
    const storage = sk(namespace, key);
    const previous = cache.peek(storage);
    const t = now();
    const entry: StoredEntry = {
      value: input.value,
      contentType: input.contentType,
      version: stamp(previous?.version ?? 0, t),
      createdAtMs: t,
      expiresAtMs: t + input.ttlMs,
      tags: [...input.tags],
    };
    cache.set(storage, entry, {
      sizeBytes: sizeOf(storage, entry),
      ttlMs: input.ttlMs,
    });
    if (!cache.has(storage)) return entry; // larger than the whole budget: accepted, then evicted at once
    for (const tag of entry.tags) {
      const k = tagKey(namespace, tag);
      const members = tagIndex.get(k) ?? new Set<string>();
      members.add(storage);
      tagIndex.set(k, members);
    }
    return entry;
  }

  function remove(storages: Iterable<string>): RemovalResult {
    const t = now();
    let removed = 0;
    let version = 0;
    for (const storage of storages) {
      const entry = cache.peek(storage);
      if (!entry) continue;
      version = Math.max(version, entry.version);
      if (cache.delete(storage) && entry.expiresAtMs > t) removed += 1;
    }
    return { removed, version: stamp(version, t) };
  }

  return {
    kind: 'memory',
    get size() {
      return cache.size;
    },
    get bytes() {
      return cache.bytes;
    },
    get evictions() {
      return evicted.counts.evict;
    },
    get evictionsByReason() {
      return evicted.counts;
    },
    policy,
    namespaceUsage(namespace, floor) {
      // A walk of the embedded store (development scale); entries below the floor were flushed and are dropped here.
      const start = sk(namespace, '');
      const t = now();
      let entries = 0;
      let bytes = 0;
      for (const [storage, entry] of [...cache.entries()]) {
        if (!storage.startsWith(start)) continue;
        if (entry.version < floor || entry.expiresAtMs <= t) {
          cache.delete(storage);
          continue;
        }
        entries++;
        bytes += sizeOf(storage, entry);
      }
      return { entries, bytes };
    },
    async get(namespace, key) {
      return live(sk(namespace, key));
    },
    async getMany(namespace, keys) {
      const found = new Map<string, StoredEntry>();
      for (const key of keys) {
        const entry = live(sk(namespace, key));
        if (entry) found.set(key, entry);
      }
      return found;
    },
    async set(namespace, key, input) {
      return write(namespace, key, input);
    },
    async setMany(namespace, entries) {
      const stored = new Map<string, StoredEntry>();
      for (const [key, input] of entries) stored.set(key, write(namespace, key, input));
      return stored;
    },
    async delete(namespace, key) {
      return remove([sk(namespace, key)]);
    },
    async purge(namespace, selector: PurgeSelector) {
      const targets = new Set<string>(selector.keys.map((k) => sk(namespace, k)));
      for (const tag of selector.tags) for (const s of tagIndex.get(tagKey(namespace, tag)) ?? []) targets.add(s);
      if (selector.prefix !== null) {
        // The embedded store is for development; a prefix purge walks its keys.
        const start = sk(namespace, selector.prefix);
        for (const [s] of cache.entries()) if (s.startsWith(start)) targets.add(s);
      }
      return remove(targets);
    },
    async ping() {},
    async close() {
      cache.clear();
    },
  };
}
