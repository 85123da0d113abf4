import { LRUCache } from 'lru-cache';
import type { DisposeReason, EvictionCache, EvictionCacheOptions, SetOptions } from './policy.ts';

interface Held<V> {
  readonly value: V;
  readonly expiresAtMs: number;
}

/**
 * Least recently used, on lru-cache (`maxSize` in bytes, each entry's size
 * given by the caller). Expiry is checked against the cache's own clock
 * (lru-cache's TTL runs on `performance.now()`, which tests cannot fake), on
 * access; an expired entry the LRU order reaches first is reported as
 * `expire`, not `evict`.
 */
export class LruCache<V> implements EvictionCache<V> {
  readonly policy = 'lru' as const;
  readonly maxBytes: number;
  readonly #cache: LRUCache<string, Held<V>>;
  readonly #now: () => number;
  // Set while this wrapper deletes an entry it found expired, to report `expire`.
  #expiring = false;

  constructor(options: EvictionCacheOptions<V>) {
    if (!(options.maxBytes > 0)) throw new RangeError('maxBytes must be a positive number of bytes');
    this.maxBytes = options.maxBytes;
    this.#now = options.now ?? Date.now;
    const onDispose = options.onDispose;
    this.#cache = new LRUCache<string, Held<V>>({
      maxSize: options.maxBytes,
      dispose: onDispose
        ? (held, key, reason) => {
            let why: DisposeReason = reason === 'evict' || reason === 'set' ? reason : 'delete';
            if (this.#expiring) why = 'expire';
            else if (reason === 'evict' && held.expiresAtMs <= this.#now()) why = 'expire';
            onDispose(held.value, key, why);
          }
        : undefined,
    });
  }

  get bytes(): number {
    return this.#cache.calculatedSize;
  }

  get size(): number {
    return this.#cache.size;
  }

  get(key: string): V | undefined {
    return this.#live(key, this.#cache.get(key));
  }

  peek(key: string): V | undefined {
    return this.#live(key, this.#cache.peek(key));
  }

  has(key: string): boolean {
    return this.peek(key) !== undefined;
  }

  set(key: string, value: V, options: SetOptions): boolean {
    const expiresAtMs = options.ttlMs === undefined ? Number.POSITIVE_INFINITY : this.#now() + options.ttlMs;
    // A size of 0 is refused by lru-cache; an empty entry still costs its slot.
    this.#cache.set(key, { value, expiresAtMs }, { size: Math.max(1, options.sizeBytes) });
    return this.#cache.has(key);
  }

  delete(key: string): boolean {
    return this.#cache.delete(key);
  }

  clear(): void {
    this.#cache.clear();
  }

  *entries(): IterableIterator<[string, V]> {
    const t = this.#now();
    for (const [key, held] of [...this.#cache.entries()]) if (held.expiresAtMs > t) yield [key, held.value];
  }

  #live(key: string, held: Held<V> | undefined): V | undefined {
    if (!held) return undefined;
    if (held.expiresAtMs > this.#now()) return held.value;
    this.#expiring = true;
    try {
      this.#cache.delete(key);
    } finally {
      this.#expiring = false;
    }
    return undefined;
  }
}
