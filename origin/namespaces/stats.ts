/**
 * Per-namespace operation counters kept by the origin's `CacheService`, the
 * source of `GET /api/v1/namespaces/{namespace}/stats` beside the store's own
 * usage. Counts since the process started; the rate is over a sliding window.
 */

/** Counters of one namespace. */
export interface NamespaceCounts {
  /** Reads answered with an entry, by the tier that answered (`memory`, `redis`, `origin-local`). */
  readonly hits: Record<string, number>;
  /** Reads that found nothing (absent, expired, or below the namespace version). */
  misses: number;
  /** Entries written (a batch counts each entry). */
  writes: number;
  /** Deletes and purges. */
  deletes: number;
}

/** Seconds over which `opsPerSecond` is averaged. */
export const opsWindowSeconds = 10;

export class NamespaceCounters {
  readonly #counts = new Map<string, NamespaceCounts>();
  // One bucket per second of the window: [second, operations] per namespace.
  readonly #buckets = new Map<string, Map<number, number>>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  hit(namespace: string, tier: string, n = 1): void {
    const c = this.#of(namespace);
    c.hits[tier] = (c.hits[tier] ?? 0) + n;
    this.#tick(namespace, n);
  }

  miss(namespace: string, n = 1): void {
    this.#of(namespace).misses += n;
    this.#tick(namespace, n);
  }

  write(namespace: string, n = 1): void {
    this.#of(namespace).writes += n;
    this.#tick(namespace, n);
  }

  delete(namespace: string, n = 1): void {
    this.#of(namespace).deletes += n;
    this.#tick(namespace, n);
  }

  /** Namespaces with any operation since start. */
  namespaces(): string[] {
    return [...this.#counts.keys()];
  }

  /** A copy of the namespace's counters (zeros when it saw no operation). */
  counts(namespace: string): NamespaceCounts {
    const c = this.#counts.get(namespace);
    return c ? { ...c, hits: { ...c.hits } } : { hits: {}, misses: 0, writes: 0, deletes: 0 };
  }

  /** Operations per second over the last {@link opsWindowSeconds} seconds. */
  opsPerSecond(namespace: string): number {
    const buckets = this.#buckets.get(namespace);
    if (!buckets) return 0;
    const since = Math.floor(this.#now() / 1000) - opsWindowSeconds;
    let total = 0;
    for (const [second, n] of buckets) if (second > since) total += n;
    return total / opsWindowSeconds;
  }

  #of(namespace: string): NamespaceCounts {
    let c = this.#counts.get(namespace);
    if (!c) {
      c = { hits: {}, misses: 0, writes: 0, deletes: 0 };
      this.#counts.set(namespace, c);
    }
    return c;
  }

  #tick(namespace: string, n: number): void {
    const second = Math.floor(this.#now() / 1000);
    let buckets = this.#buckets.get(namespace);
    if (!buckets) {
      buckets = new Map();
      this.#buckets.set(namespace, buckets);
    }
    buckets.set(second, (buckets.get(second) ?? 0) + n);
    for (const s of buckets.keys()) if (s <= second - opsWindowSeconds) buckets.delete(s);
  }
}
