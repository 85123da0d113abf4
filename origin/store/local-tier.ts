import {
  createEvictionCache,
  defaultEvictionPolicy,
  type EvictionCache,
  type EvictionCounts,
  type EvictionPolicy,
  evictionCounts,
} from '../../shared/eviction/index.ts';
import { storageKey, storageKeyPrefix } from '../../shared/keys.ts';
import { keepUntilMs } from '../../shared/lifecycle.ts';
import type { StoredEntry } from './store.ts';

/** Bytes counted per entry on top of key and value, for maps and metadata. */
const entryOverheadBytes = 128;

/** A change accepted while Redis could not take it, waiting to be written back. */
export type DirtyChange =
  | { readonly kind: 'set'; readonly namespace: string; readonly key: string; readonly entry: StoredEntry }
  | { readonly kind: 'delete'; readonly namespace: string; readonly key: string; readonly version: number };

/** What the local tier knows about a key. */
export type LocalLookup =
  | { readonly kind: 'dirty-set'; readonly entry: StoredEntry }
  | { readonly kind: 'dirty-delete'; readonly version: number }
  | { readonly kind: 'clean'; readonly entry: StoredEntry }
  | { readonly kind: 'unknown' };

/** Options of {@link LocalTier}. */
export interface LocalTierOptions {
  /** Byte budget of clean copies (values + keys + overhead). */
  readonly maxBytes: number;
  /** Which clean copies go first when the budget is full (`EVICTION_POLICY`); default S3-FIFO. */
  readonly policy?: EvictionPolicy;
  /** Byte budget of dirty changes; past it, writes during an outage are refused. */
  readonly maxDirtyBytes: number;
  /** Clock, Unix ms. */
  readonly now?: () => number;
}

/**
 * The origin's local fallback tier: synchronous, in-process, byte-bounded.
 *
 * - **Clean copies** of entries read from or written to Redis, in a
 *   byte-budgeted cache of the configured eviction policy with each entry's
 *   own TTL: what a degraded read can serve.
 * - **Dirty changes** (writes and deletes accepted while Redis was
 *   unavailable), kept apart from the clean copies so eviction never drops an
 *   acknowledged write. Bounded by `maxDirtyBytes`; {@link putDirty} refuses
 *   past it. They live in process memory only: an origin crash loses them.
 */
export class LocalTier {
  readonly #clean: EvictionCache<StoredEntry>;
  readonly #evicted = evictionCounts();
  readonly #dirty = new Map<string, DirtyChange>();
  readonly #maxDirtyBytes: number;
  readonly #now: () => number;
  #dirtyBytes = 0;

  constructor(options: LocalTierOptions) {
    this.#now = options.now ?? Date.now;
    this.#maxDirtyBytes = options.maxDirtyBytes;
    this.#clean = createEvictionCache<StoredEntry>(options.policy ?? defaultEvictionPolicy, {
      maxBytes: options.maxBytes,
      now: this.#now,
      onDispose: (_entry, _key, reason) => this.#evicted.count(reason),
    });
  }

  /** The eviction policy of the clean copies. */
  get policy(): EvictionPolicy {
    return this.#clean.policy;
  }

  /** Clean copies dropped to stay within the byte budget, since start. */
  get evictions(): number {
    return this.#evicted.counts.evict;
  }

  /** Clean copies dropped for the budget (`evict`) or found past their TTL (`expire`), since start. */
  get evictionsByReason(): EvictionCounts {
    return this.#evicted.counts;
  }

  /** Number of dirty changes waiting for write-back. */
  get dirtyCount(): number {
    return this.#dirty.size;
  }

  /** Bytes held by dirty changes. */
  get dirtyBytes(): number {
    return this.#dirtyBytes;
  }

  /** Clean copies held. */
  get cleanCount(): number {
    return this.#clean.size;
  }

  /** The freshest local knowledge of a key; expired entries count as unknown. */
  lookup(namespace: string, key: string): LocalLookup {
    const k = storageKey(namespace, key);
    const now = this.#now();
    const dirty = this.#dirty.get(k);
    if (dirty?.kind === 'delete') return { kind: 'dirty-delete', version: dirty.version };
    if (dirty?.kind === 'set' && keepUntilMs(dirty.entry) > now) return { kind: 'dirty-set', entry: dirty.entry };
    const clean = this.#clean.get(k);
    if (clean && keepUntilMs(clean) > now) return { kind: 'clean', entry: clean };
    return { kind: 'unknown' };
  }

  /** Highest version known locally for a key (0 when none), to stamp the next local version above it. */
  knownVersion(namespace: string, key: string): number {
    const k = storageKey(namespace, key);
    const dirty = this.#dirty.get(k);
    const dirtyVersion = dirty ? (dirty.kind === 'set' ? dirty.entry.version : dirty.version) : 0;
    return Math.max(dirtyVersion, this.#clean.peek(k)?.version ?? 0);
  }

  /** Keeps a clean copy of an entry Redis holds (after a read or an acknowledged write). */
  putClean(namespace: string, key: string, entry: StoredEntry): void {
    const ttl = keepUntilMs(entry) - this.#now();
    if (ttl <= 0) return;
    const k = storageKey(namespace, key);
    this.#clean.set(k, entry, { sizeBytes: sizeOf(k, entry), ttlMs: ttl });
  }

  /** Forgets the clean copy of a key (Redis said it is gone). */
  dropClean(namespace: string, key: string): void {
    this.#clean.delete(storageKey(namespace, key));
  }

  /**
   * Records a change accepted while Redis was unavailable; a later change to
   * the same key replaces an earlier one.
   * @returns false (and records nothing) when the dirty budget is exhausted.
   */
  putDirty(change: DirtyChange): boolean {
    const k = storageKey(change.namespace, change.key);
    const previous = this.#dirty.get(k);
    const delta = dirtySize(k, change) - (previous ? dirtySize(k, previous) : 0);
    if (this.#dirtyBytes + delta > this.#maxDirtyBytes) return false;
    this.#dirty.set(k, change);
    this.#dirtyBytes += delta;
    if (change.kind === 'set') this.putClean(change.namespace, change.key, change.entry);
    else this.dropClean(change.namespace, change.key);
    return true;
  }

  /** Dirty changes in acceptance order (a snapshot). */
  dirtyChanges(): DirtyChange[] {
    return [...this.#dirty.values()];
  }

  /** True while `change` is the key's current dirty change (not settled, discarded or replaced). */
  isPending(change: DirtyChange): boolean {
    return this.#dirty.get(storageKey(change.namespace, change.key)) === change;
  }

  /**
   * Removes a dirty change once it is settled in Redis, but only if it is
   * still the current one (a newer local change to the key stays).
   */
  settle(change: DirtyChange): void {
    const k = storageKey(change.namespace, change.key);
    if (this.#dirty.get(k) !== change) return;
    this.#dirty.delete(k);
    this.#dirtyBytes -= dirtySize(k, change);
  }

  /** Drops any dirty change of a key: a newer change reached Redis directly. */
  discardDirty(namespace: string, key: string): void {
    const k = storageKey(namespace, key);
    const change = this.#dirty.get(k);
    if (change) this.settle(change);
  }

  /** Keys of clean copies and dirty changes in a namespace matching a predicate on the entry (for purges). */
  matching(namespace: string, match: (key: string, entry: StoredEntry | null) => boolean): string[] {
    const prefix = storageKeyPrefix(namespace);
    const keys = new Set<string>();
    for (const [k, entry] of this.#clean.entries()) {
      if (k.startsWith(prefix) && match(k.slice(prefix.length), entry)) keys.add(k.slice(prefix.length));
    }
    for (const [k, change] of this.#dirty) {
      if (!k.startsWith(prefix)) continue;
      const key = k.slice(prefix.length);
      if (match(key, change.kind === 'set' ? change.entry : null)) keys.add(key);
    }
    return [...keys];
  }

  /** Drops everything (clean and dirty). */
  clear(): void {
    this.#clean.clear();
    this.#dirty.clear();
    this.#dirtyBytes = 0;
  }
}

function sizeOf(k: string, entry: StoredEntry): number {
  return entry.value.byteLength + k.length * 2 + entryOverheadBytes;
}

function dirtySize(k: string, change: DirtyChange): number {
  return change.kind === 'set' ? sizeOf(k, change.entry) : k.length * 2 + entryOverheadBytes;
}
