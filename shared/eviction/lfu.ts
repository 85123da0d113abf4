import { type BaseEntry, IndexedCache } from './entry.ts';
import { type Linked, LinkedQueue } from './list.ts';
import type { EvictionCache, EvictionCacheOptions } from './policy.ts';

interface Bucket<V> extends Linked<Bucket<V>> {
  /** The priority every entry of this bucket has. */
  readonly priority: number;
  /** Entries of this priority, oldest arrival first: ties are evicted in FIFO order. */
  readonly entries: LinkedQueue<LfuEntry<V>>;
}

interface LfuEntry<V> extends BaseEntry<V>, Linked<LfuEntry<V>> {
  bucket: Bucket<V>;
}

/** Options of {@link LfuCache}. */
export interface LfuCacheOptions<V> extends EvictionCacheOptions<V> {
  /**
   * Dynamic aging (default true). Off, this is plain in-cache LFU, which
   * libCacheSim's `LFU` matches exactly; the reference test uses that to
   * check the frequency bookkeeping.
   */
  readonly aging?: boolean;
}

/**
 * LFU with Dynamic Aging (LFU-DA; Arlitt, Cherkasova, Dilley, Friedrich,
 * Jin: "Evaluating content management techniques for Web proxy caches",
 * ACM SIGMETRICS PER 27(4), 2000), byte-budgeted.
 *
 * Every entry has a priority K = L + accesses, where the cache age L is the
 * priority of the last evicted entry. A new entry starts at L + 1; each
 * access adds 1; the entry with the lowest K goes first, the oldest arrival
 * among equals. Since L rises as entries are evicted, a newcomer starts
 * where the old favourites have sunk to: popularity earned long ago decays
 * relative to the present instead of pinning an entry for ever (the
 * weakness of plain LFU). Frequencies are kept in-cache only (an evicted
 * key starts over).
 *
 * O(1) per operation (Shah, Mitra, Matani: "An O(1) algorithm for
 * implementing the LFU cache eviction scheme", 2010): entries of equal
 * priority share a bucket; buckets form a list in rising priority, and a
 * hit or an insert only ever creates a bucket next to a known one.
 */
export class LfuCache<V> extends IndexedCache<V, LfuEntry<V>> implements EvictionCache<V> {
  readonly policy = 'lfu' as const;
  readonly #aging: boolean;
  readonly #buckets = new LinkedQueue<Bucket<V>>();
  /** The cache age L: the priority of the last evicted entry (0 before any, or without aging). */
  #age = 0;

  constructor(options: LfuCacheOptions<V>) {
    super(options);
    this.#aging = options.aging ?? true;
  }

  /** The priority of `key` (undefined when absent); for tests. */
  priorityOf(key: string): number | undefined {
    return this.index.get(key)?.bucket.priority;
  }

  /** The cache age L; for tests. */
  get age(): number {
    return this.#age;
  }

  protected create(key: string, value: V, sizeBytes: number, expiresAtMs: number): LfuEntry<V> {
    return { key, value, sizeBytes, expiresAtMs, prev: null, next: null, bucket: null as unknown as Bucket<V> };
  }

  protected link(entry: LfuEntry<V>): void {
    const priority = this.#age + 1;
    // Every resident priority is at least L, so bucket L+1 is the head or right after it.
    let before: Bucket<V> | null = null;
    let at = this.#buckets.head;
    while (at && at.priority < priority) {
      before = at;
      at = at.next;
    }
    const bucket = at?.priority === priority ? at : this.#insertBucketAfter(before, priority);
    this.#place(entry, bucket);
  }

  protected unlink(entry: LfuEntry<V>): void {
    const bucket = entry.bucket;
    bucket.entries.unlink(entry);
    if (bucket.entries.length === 0) this.#buckets.unlink(bucket);
  }

  protected touch(entry: LfuEntry<V>): void {
    const from = entry.bucket;
    const priority = from.priority + 1;
    const to = from.next?.priority === priority ? from.next : this.#insertBucketAfter(from, priority);
    from.entries.unlink(entry);
    this.#place(entry, to);
    if (from.entries.length === 0) this.#buckets.unlink(from);
  }

  protected evictOne(): void {
    const victim = this.#buckets.head!.entries.head!;
    if (this.#aging) this.#age = victim.bucket.priority;
    this.drop(victim, this.expired(victim) ? 'expire' : 'evict');
  }

  #place(entry: LfuEntry<V>, bucket: Bucket<V>): void {
    entry.bucket = bucket;
    bucket.entries.push(entry);
  }

  /** A new empty bucket right after `before` (at the head when null). */
  #insertBucketAfter(before: Bucket<V> | null, priority: number): Bucket<V> {
    const bucket: Bucket<V> = { priority, entries: new LinkedQueue(), prev: null, next: null };
    this.#buckets.insertAfter(before, bucket);
    return bucket;
  }
}
