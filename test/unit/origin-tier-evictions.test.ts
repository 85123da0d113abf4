import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LocalTier } from '../../origin/store/local-tier.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import { registerTierMetrics } from '../../origin/store-metrics.ts';
import { evictionPolicies } from '../../shared/eviction/index.ts';

const value = (n: number) => ({
  value: new Uint8Array(n),
  contentType: 'application/octet-stream',
  ttlMs: 60_000,
  tags: [],
});

describe.each(evictionPolicies)('origin tier evictions (%s)', (policy) => {
  it('the embedded store counts entries evicted for its budget, not deletes, and exports them', async () => {
    const store = memoryStore({ maxBytes: 5_000, policy });
    await store.set('ns', 'gone-by-delete', value(100));
    await store.delete('ns', 'gone-by-delete');
    for (let i = 0; i < 10; i++) await store.set('ns', `k${i}`, value(1_000));
    expect(store.evictions).toBeGreaterThan(0);
    expect(store.evictions).toBe(10 - store.size);
    const registry = new Registry();
    registerTierMetrics(registry, passThroughStore(store, store));
    expect(await registry.getSingleMetricAsString('strata_store_evictions_total')).toContain(
      `strata_store_evictions_total{policy="${policy}",reason="evict"} ${store.evictions}`,
    );
    await store.set('ns', 'one-more', value(1_000));
    expect(await registry.getSingleMetricAsString('strata_store_evictions_total')).toContain(
      `strata_store_evictions_total{policy="${policy}",reason="evict"} ${store.evictions}`,
    );
  });

  it("the origin's fallback tier counts clean copies evicted for its budget", () => {
    const tier = new LocalTier({ maxBytes: 5_000, maxDirtyBytes: 5_000, policy });
    const now = Date.now();
    for (let i = 0; i < 10; i++) {
      tier.putClean('ns', `k${i}`, {
        value: new Uint8Array(1_000),
        contentType: 'application/octet-stream',
        version: i + 1,
        createdAtMs: now,
        expiresAtMs: now + 60_000,
        tags: [],
      });
    }
    expect(tier.evictions).toBe(10 - tier.cleanCount);
    expect(tier.evictions).toBeGreaterThan(0);
  });
});
