import type { Store, StoreUsage, TieredStore } from './store.ts';

/**
 * A {@link TieredStore} over a store with no fallback tier in front of it
 * (the embedded memory store): every answer comes from the store itself, is
 * never degraded, and every change is durable as soon as the store has it.
 *
 * @param usage the store's sizes for `/metrics` (`strata_store_bytes`,
 *   `strata_store_evictions_total`), when it has them.
 */
export function passThroughStore(inner: Store, usage?: StoreUsage): TieredStore {
  return {
    kind: inner.kind,
    ...(usage ? { usage } : {}),
    async getTiered(namespace, key) {
      const entry = await inner.get(namespace, key);
      return entry ? { entry, tier: inner.kind, status: 'HIT', degraded: false } : { entry: null, degraded: false };
    },
    async getManyTiered(namespace, keys) {
      return { found: await inner.getMany(namespace, keys), tier: inner.kind, degraded: false };
    },
    health: () => ({ breaker: null, dirty: 0, durable: true }),
    acceptedLocally: () => false,
    get: (namespace, key) => inner.get(namespace, key),
    getMany: (namespace, keys) => inner.getMany(namespace, keys),
    set: (namespace, key, input) => inner.set(namespace, key, input),
    setMany: (namespace, entries) => inner.setMany(namespace, entries),
    delete: (namespace, key, once) => inner.delete(namespace, key, once),
    purge: (namespace, selector) => inner.purge(namespace, selector),
    ...(inner.listKeys ? { listKeys: inner.listKeys.bind(inner) } : {}),
    ...(inner.swap ? { swap: inner.swap.bind(inner) } : {}),
    ...(inner.grantLease ? { grantLease: inner.grantLease.bind(inner) } : {}),
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
}
