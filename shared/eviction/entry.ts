import type { DisposeReason, EvictionCacheOptions, SetOptions } from './policy.ts';

/** What every policy keeps per entry; policies extend it with their own bookkeeping. */
export interface BaseEntry<V> {
  readonly key: string;
  value: V;
  sizeBytes: number;
  /** Unix ms past which the entry is dead; `Infinity` when it has no TTL. */
  expiresAtMs: number;
}

/**
 * The parts the hand-written policies share: the key index, byte count,
 * clock, lazy expiry and the dispose callback. A policy supplies how an
 * entry is linked, touched and chosen for eviction.
 */
export abstract class IndexedCache<V, E extends BaseEntry<V>> {
  readonly maxBytes: number;
  protected readonly index = new Map<string, E>();
  protected readonly now: () => number;
  readonly #onDispose: ((value: V, key: string, reason: DisposeReason) => void) | undefined;
  #bytes = 0;

  constructor(options: EvictionCacheOptions<V>) {
    if (!(options.maxBytes > 0)) throw new RangeError('maxBytes must be a positive number of bytes');
    this.maxBytes = options.maxBytes;
    this.now = options.now ?? Date.now;
    this.#onDispose = options.onDispose;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.index.size;
  }

  /** Links a new entry into the policy's structures (its bytes are already counted). */
  protected abstract link(entry: E): void;
  /** Unlinks an entry from the policy's structures. */
  protected abstract unlink(entry: E): void;
  /** Records an access (a hit, or a replacement of a present key). */
  protected abstract touch(entry: E): void;
  /** Removes one entry chosen by the policy (through {@link drop}); called only while the cache is not empty. */
  protected abstract evictOne(): void;
  /** Told when a replaced value changed an entry's size; policies that count bytes per queue override it. */
  protected resized(_entry: E, _deltaBytes: number): void {}
  /** A new entry object for `key`. */
  protected abstract create(key: string, value: V, sizeBytes: number, expiresAtMs: number): E;

  get(key: string): V | undefined {
    const entry = this.live(key);
    if (!entry) return undefined;
    this.touch(entry);
    return entry.value;
  }

  peek(key: string): V | undefined {
    return this.live(key)?.value;
  }

  has(key: string): boolean {
    return this.live(key) !== undefined;
  }

  set(key: string, value: V, options: SetOptions): boolean {
    const sizeBytes = options.sizeBytes;
    const expiresAtMs = options.ttlMs === undefined ? Number.POSITIVE_INFINITY : this.now() + options.ttlMs;
    const present = this.index.get(key);
    if (sizeBytes > this.maxBytes) {
      if (present) this.drop(present, 'set');
      return false;
    }
    if (present) {
      const old = present.value;
      const deltaBytes = sizeBytes - present.sizeBytes;
      if (this.#bytes + deltaBytes > this.maxBytes) {
        // A growing overwrite that overflows: room is made among the other entries, so the
        // entry being written is never the one evicted (it re-enters the policy as a re-insert).
        this.index.delete(key);
        this.#bytes -= present.sizeBytes;
        this.unlink(present);
        while (this.#bytes + sizeBytes > this.maxBytes) this.evictOne();
        present.sizeBytes = sizeBytes;
        this.index.set(key, present);
        this.#bytes += sizeBytes;
        this.link(present);
      } else {
        this.#bytes += deltaBytes;
        present.sizeBytes = sizeBytes;
        this.resized(present, deltaBytes);
      }
      present.value = value;
      present.expiresAtMs = expiresAtMs;
      this.touch(present);
      if (old !== value) this.#onDispose?.(old, key, 'set');
      return true;
    }
    while (this.#bytes + sizeBytes > this.maxBytes) this.evictOne();
    const entry = this.create(key, value, sizeBytes, expiresAtMs);
    this.index.set(key, entry);
    this.#bytes += sizeBytes;
    this.link(entry);
    return true;
  }

  delete(key: string): boolean {
    const entry = this.index.get(key);
    if (!entry) return false;
    this.drop(entry, 'delete');
    return true;
  }

  clear(): void {
    for (const entry of [...this.index.values()]) this.drop(entry, 'delete');
  }

  *entries(): IterableIterator<[string, V]> {
    const t = this.now();
    for (const entry of [...this.index.values()]) {
      if (entry.expiresAtMs > t && this.index.get(entry.key) === entry) yield [entry.key, entry.value];
    }
  }

  /** Whether an entry's TTL has passed on the cache's clock. */
  protected expired(entry: E): boolean {
    return entry.expiresAtMs <= this.now();
  }

  /** Removes an entry from the index, the byte count and the policy, then tells the owner why. */
  protected drop(entry: E, reason: DisposeReason): void {
    this.index.delete(entry.key);
    this.#bytes -= entry.sizeBytes;
    this.unlink(entry);
    this.#onDispose?.(entry.value, entry.key, reason);
  }

  /** The live entry of `key`; drops it (reason `expire`) when its TTL has passed. */
  private live(key: string): E | undefined {
    const entry = this.index.get(key);
    if (!entry) return undefined;
    if (this.expired(entry)) {
      this.drop(entry, 'expire');
      return undefined;
    }
    return entry;
  }
}
