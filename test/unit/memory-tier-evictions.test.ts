import { describe, expect, it } from 'vitest';
import { edgeEntryOverheadBytes, memoryTier } from '../../edge/core/memory-tier.ts';
import type { EdgeEntry } from '../../edge/core/tier.ts';

const entry = (key: string, version = 1): EdgeEntry => ({
  namespace: 'n',
  key,
  value: new Uint8Array(100),
  contentType: 'application/octet-stream',
  version,
  createdAtMs: 0,
  expiresAtMs: Date.now() + 60_000,
  tags: [],
  filledFrom: 'redis',
});

describe('edge memory tier', () => {
  it('counts evictions for the byte budget, and not purges, deletes or overwrites', () => {
    // Room for two entries (100-byte value, 1-char key, overhead), not three.
    const tier = memoryTier({ maxBytes: 2 * (100 + 2 * 3 + edgeEntryOverheadBytes) + 10 });
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
    tier.set(entry('c')); // budget: the least recently used (b) goes
    expect(tier.evictions).toBe(1);
    expect(tier.get('n', 'b')).toBeUndefined();
    expect(tier.size).toBe(2);
  });
});
