import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { edgeEntryOverheadBytes, memoryTier } from '../../edge/core/memory-tier.ts';
import type { EdgeEntry } from '../../edge/core/tier.ts';
import { evictionCounter } from '../../platform/node/eviction-metrics.ts';
import { evictionPolicies } from '../../shared/eviction/index.ts';

const entry = (key: string, version = 1, expiresAtMs = Date.now() + 60_000): EdgeEntry => ({
  namespace: 'n',
  key,
  value: new Uint8Array(100),
  contentType: 'application/octet-stream',
  version,
  createdAtMs: 0,
  expiresAtMs,
  tags: [],
  filledFrom: 'redis',
});

describe.each(evictionPolicies)('edge memory tier (%s)', (policy) => {
  it('counts evictions for the byte budget, and not purges, deletes or overwrites', () => {
    // Room for two entries (100-byte value, 1-char key, overhead), not three.
    const tier = memoryTier({ maxBytes: 2 * (100 + 2 * 3 + edgeEntryOverheadBytes) + 10, policy });
    tier.set(entry('a'));
    tier.set(entry('b'));
    tier.set(entry('b', 2)); // overwrite
    tier.delete('n', 'a');
    tier.set(entry('a'));
    tier.purge({
      type: 'purge',
      position: 'p',
      namespace: 'n',
      keys: ['a'],
      tags: [],
      prefix: null,
      version: 5,
      action: 'delete',
      ts: 0,
    });
    expect(tier.evictions).toBe(0);
    tier.set(entry('a'));
    tier.set(entry('c')); // budget: one entry goes (LRU: the least recently used, b)
    expect(tier.evictions).toBe(1);
    expect(tier.size).toBe(2);
    if (policy === 'lru') expect(tier.get('n', 'b')).toBeUndefined();
  });

  it('counts an entry found past its TTL as an expiry, and exports both reasons with the policy', async () => {
    let now = 1_000;
    const tier = memoryTier({ maxBytes: 1 << 20, policy, now: () => now });
    tier.set(entry('a', 1, 2_000));
    now = 2_000;
    expect(tier.get('n', 'a')).toBeUndefined();
    expect(tier.evictionsByReason).toEqual({ evict: 0, expire: 1 });
    const registry = new Registry();
    evictionCounter(registry, 'edge_evictions_total', 'test', tier.policy!, () => tier.evictionsByReason!);
    const text = await registry.getSingleMetricAsString('edge_evictions_total');
    expect(text).toContain(`edge_evictions_total{policy="${policy}",reason="expire"} 1`);
    expect(text).toContain(`edge_evictions_total{policy="${policy}",reason="evict"} 0`);
  });
});
