import { type BaseEntry, IndexedCache } from './entry.ts';
import { type Linked, LinkedQueue } from './list.ts';
import type { EvictionCache, EvictionCacheOptions, SetOptions } from './policy.ts';

/** Share of the byte budget given to the small (probationary) FIFO. */
export const s3fifoSmallRatio = 0.1;
/** Accesses in the small FIFO (since insertion) that earn a move to the main FIFO instead of the ghost. */
export const s3fifoMoveToMainThreshold = 2;
/** Cap of the per-entry access counter (2 bits). */
export const s3fifoMaxFreq = 3;

interface S3Entry<V> extends BaseEntry<V>, Linked<S3Entry<V>> {
  /** Accesses since insertion or last reinsertion, capped at {@link s3fifoMaxFreq}. */
  freq: number;
  queue: 'small' | 'main';
}

/**
 * S3-FIFO (Yang, Zhang, Qiu, Yue, Vinayak: "FIFO queues are all you need
 * for cache eviction", SOSP 2023), byte-budgeted:
 *
 * - **small** FIFO, 10% of the budget: every new key enters here, unless
 *   the ghost remembers it or it is larger than the small FIFO (then main).
 *   When the small FIFO must give up its oldest entry, an entry accessed at
 *   least {@link s3fifoMoveToMainThreshold} times moves to main (counter
 *   reset); any other is evicted and its key goes to the ghost.
 * - **main** FIFO, the other 90%, with 2-bit CLOCK reinsertion: its oldest
 *   entry is reinserted at the tail with its counter decremented while the
 *   counter is above 0, else evicted.
 * - **ghost** FIFO of keys only (no values, counts nothing against the
 *   budget), remembering the keys of the most recent small-FIFO evictions
 *   up to the byte size of the main FIFO: "as many entries as main" for
 *   entries of like size. A set of a key the ghost holds goes straight to
 *   main.
 *
 * Until the first eviction, new keys go to main once the small FIFO is
 * full, so a cold cache fills its whole budget before anything is dropped.
 * The small FIFO is evicted from while main is within its share, the main
 * one otherwise (or when small is empty). These are the rules and defaults of
 * libCacheSim's `S3FIFO` (small-size-ratio 0.1, ghost-size-ratio 0.9,
 * move-to-main-threshold 2, as of libCacheSim 0.3.5), which
 * `test/integration/eviction-reference.test.ts` checks this against on a
 * real trace. Hits cost O(1) and never move an
 * entry; an entry found expired at the head of a queue is dropped (`expire`)
 * instead of being reinserted.
 */
export class S3FifoCache<V> extends IndexedCache<V, S3Entry<V>> implements EvictionCache<V> {
  readonly policy = 's3fifo' as const;
  readonly #small = new LinkedQueue<S3Entry<V>>();
  readonly #main = new LinkedQueue<S3Entry<V>>();
  readonly #smallMaxBytes: number;
  readonly #mainMaxBytes: number;
  #smallBytes = 0;
  #mainBytes = 0;
  // The ghost: key → [serial, bytes] of live ghost entries, and a FIFO of [key, serial] in
  // remembering order. A key forgotten on a ghost hit leaves a stale FIFO slot behind (its
  // serial no longer matches), skipped when trimming and dropped when the FIFO is compacted;
  // so every ghost operation is O(1) amortized. (A Map's own insertion order would do, but
  // V8 walks the holes of deleted entries when asked for the oldest one: quadratic.)
  readonly #ghost = new Map<string, { serial: number; sizeBytes: number }>();
  #ghostFifo: { key: string; serial: number }[] = [];
  #ghostHead = 0;
  #ghostSerial = 0;
  #ghostBytes = 0;
  #ghostHit = false;
  // Until the first eviction, new keys overflow into main once small is full, so the whole budget fills.
  #hasEvicted = false;

  constructor(options: EvictionCacheOptions<V>) {
    super(options);
    this.#smallMaxBytes = Math.floor(options.maxBytes * s3fifoSmallRatio);
    this.#mainMaxBytes = options.maxBytes - this.#smallMaxBytes;
  }

  /** Queue sizes, for tests of the invariants: bytes and entries per FIFO, and ghost keys. */
  get queues(): {
    small: { bytes: number; entries: number; maxBytes: number };
    main: { bytes: number; entries: number; maxBytes: number };
    ghost: { bytes: number; entries: number };
  } {
    return {
      small: { bytes: this.#smallBytes, entries: this.#small.length, maxBytes: this.#smallMaxBytes },
      main: { bytes: this.#mainBytes, entries: this.#main.length, maxBytes: this.#mainMaxBytes },
      ghost: { bytes: this.#ghostBytes, entries: this.#ghost.size },
    };
  }

  /** Which FIFO holds `key` (`undefined` when absent), and its counter; for tests. */
  inspect(key: string): { queue: 'small' | 'main'; freq: number } | undefined {
    const entry = this.index.get(key);
    return entry && { queue: entry.queue, freq: entry.freq };
  }

  /** Whether the ghost remembers `key`; for tests. */
  inGhost(key: string): boolean {
    return this.#ghost.has(key);
  }

  override set(key: string, value: V, options: SetOptions): boolean {
    // The ghost is consulted before evictions run, as libCacheSim's find does.
    this.#ghostHit = !this.index.has(key) && this.#forget(key);
    try {
      return super.set(key, value, options);
    } finally {
      this.#ghostHit = false;
    }
  }

  protected create(key: string, value: V, sizeBytes: number, expiresAtMs: number): S3Entry<V> {
    return { key, value, sizeBytes, expiresAtMs, freq: 0, queue: 'small', prev: null, next: null };
  }

  protected link(entry: S3Entry<V>): void {
    const toMain =
      this.#ghostHit ||
      entry.sizeBytes > this.#smallMaxBytes ||
      (!this.#hasEvicted && this.#smallBytes >= this.#smallMaxBytes);
    this.#enqueue(entry, toMain ? 'main' : 'small');
  }

  protected unlink(entry: S3Entry<V>): void {
    if (entry.queue === 'small') {
      this.#small.unlink(entry);
      this.#smallBytes -= entry.sizeBytes;
    } else {
      this.#main.unlink(entry);
      this.#mainBytes -= entry.sizeBytes;
    }
  }

  protected override resized(entry: S3Entry<V>, deltaBytes: number): void {
    if (entry.queue === 'small') this.#smallBytes += deltaBytes;
    else this.#mainBytes += deltaBytes;
  }

  protected touch(entry: S3Entry<V>): void {
    if (entry.freq < s3fifoMaxFreq) entry.freq++;
  }

  protected evictOne(): void {
    this.#hasEvicted = true;
    if (this.#mainBytes > this.#mainMaxBytes || this.#small.length === 0) this.#evictMain();
    else this.#evictSmall();
  }

  #enqueue(entry: S3Entry<V>, queue: 'small' | 'main'): void {
    entry.queue = queue;
    if (queue === 'small') {
      this.#small.push(entry);
      this.#smallBytes += entry.sizeBytes;
    } else {
      this.#main.push(entry);
      this.#mainBytes += entry.sizeBytes;
    }
  }

  #evictSmall(): void {
    for (let entry = this.#small.head; entry; entry = this.#small.head) {
      if (this.expired(entry)) {
        this.drop(entry, 'expire');
        return;
      }
      if (entry.freq >= s3fifoMoveToMainThreshold) {
        this.unlink(entry);
        entry.freq = 0;
        this.#enqueue(entry, 'main');
        continue;
      }
      this.drop(entry, 'evict');
      this.#remember(entry.key, entry.sizeBytes);
      return;
    }
    this.#evictMain();
  }

  #evictMain(): void {
    for (let entry = this.#main.head; entry; entry = this.#main.head) {
      if (this.expired(entry)) {
        this.drop(entry, 'expire');
        return;
      }
      if (entry.freq > 0) {
        this.unlink(entry);
        entry.freq--;
        this.#enqueue(entry, 'main');
        continue;
      }
      this.drop(entry, 'evict');
      return;
    }
  }

  #remember(key: string, sizeBytes: number): void {
    this.#forget(key);
    const serial = ++this.#ghostSerial;
    this.#ghost.set(key, { serial, sizeBytes });
    this.#ghostFifo.push({ key, serial });
    this.#ghostBytes += sizeBytes;
    while (this.#ghostBytes > this.#mainMaxBytes) {
      const oldest = this.#ghostFifo[this.#ghostHead++]!;
      if (this.#ghost.get(oldest.key)?.serial === oldest.serial) this.#forget(oldest.key);
    }
    const slots = this.#ghostFifo.length - this.#ghostHead;
    if (this.#ghostHead > 1024 && this.#ghostHead > slots) this.#compactGhost();
    else if (slots > 2 * this.#ghost.size + 1024) this.#compactGhost();
  }

  /** Drops consumed and stale slots from the ghost FIFO. */
  #compactGhost(): void {
    this.#ghostFifo = this.#ghostFifo
      .slice(this.#ghostHead)
      .filter((slot) => this.#ghost.get(slot.key)?.serial === slot.serial);
    this.#ghostHead = 0;
  }

  /** Removes `key` from the ghost. @returns whether it was there. */
  #forget(key: string): boolean {
    const held = this.#ghost.get(key);
    if (held === undefined) return false;
    this.#ghost.delete(key);
    this.#ghostBytes -= held.sizeBytes;
    return true;
  }
}
