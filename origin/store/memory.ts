import {
  createEvictionCache,
  defaultEvictionPolicy,
  type EvictionCounts,
  type EvictionPolicy,
  evictionCounts,
} from '../../shared/eviction/index.ts';
import { namespaceOfStorageKey, storageKey } from '../../shared/keys.ts';
import { graceFields, graceMs, keepUntilMs, softPurged } from '../../shared/lifecycle.ts';
import { nextVersion } from '../../shared/version.ts';
import { parseGlob } from '../listing/glob.ts';
import { namespaceKeyIndex } from './memory-key-index.ts';
import {
  type EntryInput,
  type KeyPage,
  LeaseLostError,
  type ListedKey,
  type NamespaceUsage,
  OnceConflictError,
  type OnceRecord,
  type PurgeSelector,
  type RefreshLease,
  type RemovalResult,
  type Store,
  type StoredEntry,
  type SwapResults,
} from './store.ts';

/** Idempotency records kept at most; the oldest go first past it (they also end at their TTL). */
const onceRecordLimit = 100_000;

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
  // Sorted keys per namespace: listing and prefix purge read a range, never the whole store.
  const keyIndex = namespaceKeyIndex();
  // Refresh leases by storage key; an expired one is replaced on the next grant.
  const leases = new Map<string, RefreshLease & { expiresAtMs: number; grantedAtMs: number }>();
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
      if (reason !== 'set') keyIndex.remove(key);
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
    if (keepUntilMs(entry) <= now()) {
      cache.delete(storage);
      return null;
    }
    return entry;
  }

  function write(namespace: string, key: string, input: EntryInput): StoredEntry {
    const storage = sk(namespace, key);
    const previous = cache.peek(storage);
    const t = now();
    const lease = leases.get(storage);
    if (input.leaseId !== undefined) {
      const holds = lease?.id === input.leaseId && lease.expiresAtMs > t && lease.version === (previous?.version ?? 0);
      if (!holds) throw new LeaseLostError(storage);
    }
    leases.delete(storage);
    const entry: StoredEntry = {
      value: input.value,
      contentType: input.contentType,
      version: stamp(previous?.version ?? 0, t),
      createdAtMs: t,
      expiresAtMs: t + input.ttlMs,
      tags: [...input.tags],
      ...graceFields(input.grace),
      ...(input.leaseId !== undefined && lease ? { refreshMs: t - lease.grantedAtMs } : {}),
    };
    cache.set(storage, entry, {
      sizeBytes: sizeOf(storage, entry),
      ttlMs: input.ttlMs + graceMs(entry),
    });
    if (!cache.has(storage)) return entry; // larger than the whole budget: accepted, then evicted at once
    keyIndex.add(namespace, key);
    index(storage, entry.tags);
    return entry;
  }

  // Idempotency records by request id and storage key, oldest first (Map keeps insertion order).
  const onceRecords = new Map<string, { fingerprint: string; result: unknown; untilMs: number }>();

  /** Runs `apply` at most once per `record` id and key (see `OnceRecord`); no record, no check. */
  function once<T>(storage: string, record: OnceRecord | undefined, apply: () => T): T {
    if (!record) return apply();
    const id = `${record.id}\n${storage}`;
    const found = onceRecords.get(id);
    if (found && found.untilMs > now()) {
      if (found.fingerprint !== record.fingerprint) throw new OnceConflictError(storage);
      return found.result as T;
    }
    const result = apply();
    onceRecords.delete(id);
    onceRecords.set(id, { fingerprint: record.fingerprint, result, untilMs: now() + record.ttlMs });
    while (onceRecords.size > onceRecordLimit) onceRecords.delete(onceRecords.keys().next().value!);
    return result;
  }

  function index(storage: string, tags: readonly string[]): void {
    const namespace = namespaceOfStorageKey(storage);
    for (const tag of tags) {
      const k = tagKey(namespace, tag);
      const members = tagIndex.get(k) ?? new Set<string>();
      members.add(storage);
      tagIndex.set(k, members);
    }
  }

  function remove(storages: Iterable<string>): RemovalResult {
    const t = now();
    let removed = 0;
    let version = 0;
    for (const storage of storages) {
      leases.delete(storage);
      const entry = cache.peek(storage);
      if (!entry) continue;
      version = Math.max(version, entry.version);
      if (cache.delete(storage) && keepUntilMs(entry) > t) removed += 1;
    }
    return { removed, version: stamp(version, t) };
  }

  /** Soft purge: each live entry is marked stale under a new version; one without grace left goes. */
  function markStale(storages: Iterable<string>): RemovalResult {
    const t = now();
    let marked = 0;
    let version = 0;
    const gone: string[] = [];
    for (const storage of storages) {
      leases.delete(storage);
      const entry = cache.peek(storage);
      if (!entry) continue;
      version = Math.max(version, entry.version);
      if (keepUntilMs(entry) <= t) continue;
      marked += 1;
      const stale = { ...softPurged(entry, t), version: stamp(entry.version, t) };
      const leftMs = keepUntilMs(stale) - t;
      if (leftMs <= 0) gone.push(storage);
      else {
        // An overwrite disposes the old value, which unindexes its tags: index them again.
        cache.set(storage, stale, {
          sizeBytes: sizeOf(storage, stale),
          ttlMs: leftMs,
        });
        if (cache.has(storage)) index(storage, stale.tags);
      }
    }
    const removal = remove(gone);
    return { removed: marked, version: stamp(Math.max(version, removal.version), t) };
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
      return once(sk(namespace, key), input.once, () => write(namespace, key, input));
    },
    async setMany(namespace, entries) {
      const stored = new Map<string, StoredEntry>();
      for (const [key, input] of entries) {
        stored.set(
          key,
          once(sk(namespace, key), input.once, () => write(namespace, key, input)),
        );
      }
      return stored;
    },
    async delete(namespace, key, record?: OnceRecord) {
      const storage = sk(namespace, key);
      return once(storage, record, () => remove([storage]));
    },
    async purge(namespace, selector: PurgeSelector) {
      const targets = new Set<string>(selector.keys.map((k) => sk(namespace, k)));
      for (const tag of selector.tags) for (const s of tagIndex.get(tagKey(namespace, tag)) ?? []) targets.add(s);
      if (selector.prefix !== null) {
        for (const key of keyIndex.withPrefix(namespace, selector.prefix)) targets.add(sk(namespace, key));
      }
      return selector.soft ? markStale(targets) : remove(targets);
    },
    async grantLease(namespace, key, id, leaseMs, seenVersion) {
      const storage = sk(namespace, key);
      const t = now();
      const held = leases.get(storage);
      if (held && held.expiresAtMs > t) return null;
      const current = cache.peek(storage);
      // Written since the caller read it: the caller should read again, not refresh.
      if (current && current.version !== seenVersion && keepUntilMs(current) > t) return null;
      const version = current?.version ?? 0;
      leases.set(storage, { id, version, expiresAtMs: t + leaseMs, grantedAtMs: t });
      return { id, version };
    },
    async listKeys(namespace, request): Promise<KeyPage> {
      const glob = parseGlob(request.match);
      const { examined, done } = keyIndex.range(namespace, glob.literalPrefix, request.cursor, request.count);
      const t = now();
      const keys: ListedKey[] = [];
      for (const key of examined) {
        if (!glob.matches(key)) continue;
        // peek, not get: a listing is not a use of the entry (it must not change what eviction keeps).
        const entry = cache.peek(sk(namespace, key));
        if (!entry || entry.expiresAtMs <= t) continue;
        keys.push({
          key,
          sizeBytes: entry.value.byteLength,
          expiresAtMs: entry.expiresAtMs,
          version: entry.version,
          tags: entry.tags,
        });
      }
      return { keys, cursor: done ? null : (examined.at(-1) ?? null) };
    },
    async swap(namespace, changes) {
      // One synchronous check-then-apply: nothing else runs in between on this event loop.
      for (const change of changes) {
        // An entry past its fresh lifetime counts as absent, as in the Redis scripts (grace serves reads, not swaps).
        const entry = live(sk(namespace, change.key));
        const version = entry && entry.expiresAtMs > now() ? entry.version : 0;
        if (version !== change.expectedVersion) return { kind: 'conflict' };
      }
      const results = new Map<string, StoredEntry | RemovalResult>();
      for (const { key, action } of changes) {
        if (action.kind === 'set') results.set(key, write(namespace, key, action.input));
        else if (action.kind === 'delete') results.set(key, remove([sk(namespace, key)]));
      }
      return { kind: 'swapped', results: results as SwapResults };
    },
    async ping() {},
    async close() {
      cache.clear();
      keyIndex.clear();
    },
  };
}
