import calculateSlot from 'cluster-key-slot';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeSlotIndexCursor,
  encodeSlotIndexCursor,
  registrationTrustMs,
  slotCount,
  slotIndexKeys,
  slotIndexKeysOf,
  slotRegistrar,
  slotRegistryKey,
  slotsPerListingCall,
} from '../../origin/store/redis-cluster-key-index.ts';
import { entryKey } from '../../origin/store/redis-codec.ts';

describe('the key index on Redis Cluster, without servers', () => {
  it('every hash slot’s index pair hashes to that slot, so one script may touch it with the entry', () => {
    const elsewhere: number[] = [];
    for (let slot = 0; slot < slotCount; slot++) {
      const [byKey, byExpiry] = slotIndexKeys('character', slot);
      if (calculateSlot(byKey) !== slot || calculateSlot(byExpiry) !== slot) elsewhere.push(slot);
    }
    expect(elsewhere).toEqual([]);
  });

  it('property: an entry’s index pair is in the entry’s own slot', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9_-]{1,16}$/), fc.string({ minLength: 1, maxLength: 40 }), (ns, key) => {
        const k = entryKey(ns, key);
        for (const indexKey of slotIndexKeysOf(k)) expect(calculateSlot(indexKey)).toBe(calculateSlot(k));
      }),
      { numRuns: 300 },
    );
  });

  it('a slot is due once, then trusted for the trust window, then due again (a lost registry is rebuilt)', () => {
    let now = 1_000_000;
    const registrar = slotRegistrar(() => now);
    const keys = ['a', 'b', 'c'].map((key) => entryKey('ns', key));
    const due = registrar.due(keys);
    expect(due).toHaveLength(1);
    expect(due[0]!.registry).toBe(slotRegistryKey('ns'));
    expect(new Set(due[0]!.slots)).toEqual(new Set(keys.map((k) => calculateSlot(k))));
    // Not acknowledged yet: still due.
    expect(registrar.due(keys)).toHaveLength(1);
    registrar.done(due);
    expect(registrar.due(keys)).toEqual([]);
    now += registrationTrustMs - 1;
    expect(registrar.due(keys)).toEqual([]);
    now += 2;
    expect(registrar.due(keys)).toHaveLength(1);
  });

  it('a listing cursor names a slot and the last key read there, any key included; anything else is CACHE_004', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: slotCount - 1 }), fc.option(fc.string({ minLength: 1 })), (slot, after) => {
        expect(decodeSlotIndexCursor(encodeSlotIndexCursor({ slot, after }))).toEqual({ slot, after });
      }),
      { numRuns: 300 },
    );
    expect(decodeSlotIndexCursor(null)).toEqual({ slot: 0, after: null });
    for (const bad of ['', '12', '@16384>', '@x>', '>key', '@-1>k']) {
      expect(() => decodeSlotIndexCursor(bad)).toThrow(expect.objectContaining({ code: 'CACHE_004' }));
    }
  });

  it('one listing call reads few slots for a large count and many for a small one, never none', () => {
    expect(slotsPerListingCall(1000)).toBe(4);
    expect(slotsPerListingCall(1)).toBe(256);
    for (let count = 1; count <= 1000; count++) {
      const slots = slotsPerListingCall(count);
      expect(slots).toBeGreaterThanOrEqual(1);
      expect(slots * count).toBeLessThanOrEqual(Math.max(4096, count));
    }
  });
});
