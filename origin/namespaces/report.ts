import { CacheError } from '../../shared/errors.ts';
import type { NamespaceStats, NamespacesOverview, NamespaceVersionInfo, StoreFootprint } from '../../shared/schemas.ts';
import type { CacheService } from '../cache-service.ts';

/** Runs a store read for a report; a failure is CACHE_005 (503), like any store failure. */
async function fromStore<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof CacheError) throw error;
    throw new CacheError('CACHE_005', 'Store unavailable', { details: { operation }, cause: error });
  }
}

/** Reads the store's footprint: memory used and its limit (bytes), keys, evictions. */
export type FootprintReader = () => Promise<StoreFootprint>;

/**
 * Builds the management views of `origin/routes/namespaces.ts` from what the
 * origin already counts: the service's per-namespace counters, the store's
 * usage capability (entries and bytes per namespace, embedded store only) and
 * the store's footprint.
 */
export class NamespaceReports {
  readonly #service: CacheService;
  readonly #footprint: FootprintReader;

  constructor(service: CacheService, footprint: FootprintReader) {
    this.#service = service;
    this.#footprint = footprint;
  }

  /** The namespace's current version and its history (newest first). */
  async version(namespace: string): Promise<NamespaceVersionInfo> {
    const history = await fromStore('version', () => this.#service.namespaces.history(namespace));
    const current = Math.max(history[0]?.version ?? 0, this.#service.namespaces.floor(namespace));
    return {
      namespace,
      version: current,
      history: history.map((h) => ({ version: h.version, flushed_at_ms: h.flushedAtMs, service_id: h.by })),
    };
  }

  /** One namespace's stats. */
  async stats(namespace: string, footprint?: StoreFootprint): Promise<NamespaceStats> {
    const service = this.#service;
    const counts = service.counters.counts(namespace);
    const usage = service.store.usage?.namespaceUsage?.(namespace, service.namespaces.floor(namespace)) ?? null;
    const hits = Object.values(counts.hits).reduce((a, n) => a + n, 0);
    const reads = hits + counts.misses;
    const hitRatio = Object.fromEntries(Object.entries(counts.hits).map(([tier, n]) => [tier, n / reads]));
    return {
      namespace,
      version: service.namespaces.floor(namespace),
      entries: usage?.entries ?? null,
      bytes: usage?.bytes ?? null,
      hits: counts.hits,
      misses: counts.misses,
      hit_ratio: { ...hitRatio, all: reads === 0 ? 0 : hits / reads },
      writes: counts.writes,
      deletes: counts.deletes,
      ops_per_second: service.counters.opsPerSecond(namespace),
      store: footprint ?? (await fromStore('stats', this.#footprint)),
    };
  }

  /** Every namespace seen since start or ever flushed, with the store's footprint once. */
  async overview(): Promise<NamespacesOverview> {
    const store = await fromStore('stats', this.#footprint);
    const flushed = await fromStore('stats', () => this.#service.namespaces.all());
    const names = new Set([...this.#service.counters.namespaces(), ...flushed.keys()]);
    const namespaces = await Promise.all([...names].sort().map((n) => this.stats(n, store)));
    return { namespaces, store };
  }
}
