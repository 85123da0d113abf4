import { LRUCache } from 'lru-cache';
import { storageKey } from '../../shared/keys.ts';
import type { StreamMessage } from '../../shared/schemas.ts';

/** Options of {@link NegativeCache}. */
export interface NegativeCacheOptions {
  /** How long an origin miss is remembered, ms (`EDGE_NEGATIVE_TTL_MS`); 0 = never. */
  readonly ttlMs: number;
  /** Most misses remembered (LRU beyond it). Default 100000. */
  readonly maxKeys?: number;
  readonly now?: () => number;
}

/**
 * An edge's memory of origin misses (negative caching), so a burst of reads
 * of an absent key costs one origin request. Any write or purge of the key
 * reaching this edge (its own write-through, or the purge stream: a write at
 * another edge arrives as a purge of the key) forgets it at once, and so does
 * a `reset`. Pure: clock passed in, no I/O.
 */
export class NegativeCache {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #misses: LRUCache<string, number>;

  constructor(options: NegativeCacheOptions) {
    this.#ttlMs = options.ttlMs;
    this.#now = options.now ?? Date.now;
    this.#misses = new LRUCache({ max: options.maxKeys ?? 100_000 });
  }

  /** Misses remembered now (some may have expired). */
  get size(): number {
    return this.#misses.size;
  }

  /** True while a miss of the key is remembered. */
  has(namespace: string, key: string): boolean {
    if (this.#ttlMs <= 0) return false;
    const k = storageKey(namespace, key);
    const until = this.#misses.get(k);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#misses.delete(k);
    return false;
  }

  /** Remembers an origin miss of the key for the configured time. */
  remember(namespace: string, key: string): void {
    if (this.#ttlMs > 0) this.#misses.set(storageKey(namespace, key), this.#now() + this.#ttlMs);
  }

  /** Forgets the key (a write or delete of it through this edge). */
  forget(namespace: string, key: string): void {
    this.#misses.delete(storageKey(namespace, key));
  }

  /** Applies a purge-stream message: a purge forgets its keys and prefix, a reset everything (tags name no absent key). */
  apply(message: StreamMessage): void {
    if (this.#misses.size === 0) return;
    if (message.type === 'reset') {
      this.#misses.clear();
      return;
    }
    if (message.type !== 'purge') return;
    for (const key of message.keys) this.forget(message.namespace, key);
    if (message.prefix !== null) {
      const prefix = storageKey(message.namespace, message.prefix);
      for (const k of [...this.#misses.keys()]) if (k.startsWith(prefix)) this.#misses.delete(k);
    }
  }
}
