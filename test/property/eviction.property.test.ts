import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createEvictionCache,
  type DisposeReason,
  type EvictionCache,
  evictionPolicies,
} from '../../shared/eviction/index.ts';
import { LfuCache } from '../../shared/eviction/lfu.ts';
import { S3FifoCache, s3fifoMaxFreq } from '../../shared/eviction/s3fifo.ts';

// At least 100 runs each (STYLE.md §8); fast-check prints the seed and path on failure.
const runs = { numRuns: Number(process.env.STRATA_PROPERTY_RUNS ?? 200) };

type Op =
  | { kind: 'set'; key: number; sizeBytes: number; ttlMs: number | undefined }
  | { kind: 'get' | 'peek' | 'has' | 'delete'; key: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'clear' };

const key = fc.integer({ min: 0, max: 40 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      key,
      sizeBytes: fc.integer({ min: 1, max: 600 }),
      ttlMs: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
    }),
  },
  { weight: 6, arbitrary: fc.record({ kind: fc.constantFrom('get' as const, 'peek' as const, 'has' as const), key }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
);
const budget = fc.integer({ min: 200, max: 4_000 });

interface Model {
  value: number;
  sizeBytes: number;
  expiresAtMs: number;
}

/**
 * Replays `ops` against a cache and a model of what it may hold: every
 * value the cache returns is the last one set for its key and still within
 * its TTL, every entry that leaves is reported once, and the byte count
 * equals the sum of the held entries' sizes and stays within the budget.
 */
function replay(make: (o: { maxBytes: number; now: () => number; onDispose: Dispose }) => EvictionCache<number>) {
  return (maxBytes: number, ops: Op[]) => {
    let now = 0;
    let serial = 0;
    const held = new Map<string, Model>();
    const onDispose: Dispose = (value, k, reason) => {
      const m = held.get(k);
      expect(m?.value).toBe(value);
      if (reason === 'expire') expect(m!.expiresAtMs).toBeLessThanOrEqual(now);
      held.delete(k);
    };
    const cache = make({ maxBytes, now: () => now, onDispose });
    for (const o of ops) {
      if (o.kind === 'tick') now += o.ms;
      else if (o.kind === 'clear') cache.clear();
      else if (o.kind === 'set') {
        const k = String(o.key);
        const value = ++serial;
        const stored = cache.set(k, value, { sizeBytes: o.sizeBytes, ttlMs: o.ttlMs });
        if (stored) held.set(k, { value, sizeBytes: o.sizeBytes, expiresAtMs: now + (o.ttlMs ?? Infinity) });
        expect(stored).toBe(o.sizeBytes <= maxBytes);
        expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
      } else {
        const k = String(o.key);
        const m = held.get(k);
        const liveValue = m && m.expiresAtMs > now ? m.value : undefined;
        if (o.kind === 'delete') cache.delete(k);
        else if (o.kind === 'has') expect(cache.has(k)).toBe(liveValue !== undefined && cache.peek(k) !== undefined);
        else {
          const got = o.kind === 'get' ? cache.get(k) : cache.peek(k);
          // A policy may have evicted it; it may never return a dead or wrong value.
          if (got !== undefined) expect(got).toBe(liveValue);
          if (m && m.expiresAtMs <= now) expect(got).toBeUndefined();
        }
      }
      let bytes = 0;
      for (const m of held.values()) bytes += m.sizeBytes;
      expect(cache.bytes).toBe(bytes);
      expect(cache.size).toBe(held.size);
      for (const [k, v] of cache.entries())
        expect(held.get(k)!.value === v && held.get(k)!.expiresAtMs > now).toBe(true);
    }
    return cache;
  };
}
type Dispose = (value: number, key: string, reason: DisposeReason) => void;

describe.each(evictionPolicies)('eviction policy %s', (policy) => {
  const run = replay((o) => createEvictionCache(policy, o));

  it('never holds more bytes than its budget once a set returns, and counts exactly what it holds', () => {
    fc.assert(
      fc.property(budget, fc.array(op, { maxLength: 300 }), (maxBytes, ops) => {
        run(maxBytes, ops);
      }),
      {
        ...runs,
        // Found by this property: an overwrite that grows to the whole budget once evicted the entry being written.
        examples: [
          [
            488,
            [
              { kind: 'set', key: 0, sizeBytes: 1, ttlMs: undefined },
              { kind: 'set', key: 1, sizeBytes: 1, ttlMs: undefined },
              { kind: 'set', key: 0, sizeBytes: 488, ttlMs: undefined },
            ],
          ],
        ],
      },
    );
  });

  it('never returns an entry past its TTL, and reports it as expired when it drops it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(key, fc.integer({ min: 1, max: 50 })), { minLength: 1, maxLength: 50 }),
        (writes) => {
          let now = 0;
          const reasons: DisposeReason[] = [];
          const cache = createEvictionCache<number>(policy, {
            maxBytes: 1 << 20,
            now: () => now,
            onDispose: (_v, _k, r) => reasons.push(r),
          });
          for (const [k, ttlMs] of writes) cache.set(String(k), ttlMs, { sizeBytes: 10, ttlMs });
          now = 50;
          for (const [k] of writes) {
            expect(cache.get(String(k))).toBeUndefined();
            expect(cache.has(String(k))).toBe(false);
          }
          expect([...cache.entries()]).toEqual([]);
          expect(reasons.filter((r) => r === 'expire').length).toBe(new Set(writes.map(([k]) => k)).size);
        },
      ),
      runs,
    );
  });
});

describe('S3-FIFO queues', () => {
  it('small, main and ghost keep their invariants under any sequence of operations', () => {
    fc.assert(
      fc.property(budget, fc.array(op, { maxLength: 300 }), (maxBytes, ops) => {
        let cache: S3FifoCache<number> | undefined;
        const checked = replay((o) => {
          cache = new S3FifoCache(o);
          return cache;
        })(maxBytes, ops) as S3FifoCache<number>;
        const q = checked.queues;
        expect(q.small.bytes + q.main.bytes).toBe(checked.bytes);
        expect(q.small.entries + q.main.entries).toBe(checked.size);
        expect(q.small.maxBytes).toBe(Math.floor(maxBytes * 0.1));
        expect(q.small.maxBytes + q.main.maxBytes).toBe(maxBytes);
        // The ghost remembers at most main's byte budget of keys, and never a key the cache holds.
        expect(q.ghost.bytes).toBeLessThanOrEqual(q.main.maxBytes);
        for (let k = 0; k <= 40; k++) {
          const at = checked.inspect(String(k));
          if (!at) continue;
          expect(checked.inGhost(String(k))).toBe(false);
          expect(at.freq).toBeGreaterThanOrEqual(0);
          expect(at.freq).toBeLessThanOrEqual(s3fifoMaxFreq);
        }
        expect(cache).toBe(checked);
      }),
      runs,
    );
  });

  it('an entry read twice in the small FIFO moves to main; one never read goes to the ghost; a ghost key returns to main', () => {
    // 10 entries of 100 bytes fill a 1 000-byte budget; the small FIFO holds one.
    const cache = new S3FifoCache<number>({ maxBytes: 1_000 });
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, i, { sizeBytes: 100 });
    cache.set('hot', 0, { sizeBytes: 100 }); // first eviction: main is full, so main gives one up (k1..)
    cache.get('hot');
    cache.get('hot');
    cache.set('cold', 0, { sizeBytes: 100 }); // small must give up its oldest: hot, read twice → main
    expect(cache.inspect('hot')).toEqual({ queue: 'main', freq: 0 });
    cache.set('next', 0, { sizeBytes: 100 }); // cold, never read, is evicted into the ghost
    expect(cache.has('cold')).toBe(false);
    expect(cache.inGhost('cold')).toBe(true);
    cache.set('cold', 1, { sizeBytes: 100 });
    expect(cache.inspect('cold')?.queue).toBe('main');
    expect(cache.inGhost('cold')).toBe(false);
  });

  it("the ghost stays within main's byte budget and remembers the latest evictions through many thousands of them", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3_000 }), { minLength: 5_000, maxLength: 8_000 }), (keys) => {
        const cache = new S3FifoCache<number>({ maxBytes: 20_000 });
        for (const k of keys) {
          cache.set(String(k), k, { sizeBytes: 100 });
          const q = cache.queues;
          expect(q.ghost.bytes).toBeLessThanOrEqual(q.main.maxBytes);
          expect(q.ghost.bytes).toBe(q.ghost.entries * 100);
        }
        let ghosts = 0;
        for (let k = 0; k <= 3_000; k++) {
          if (!cache.inGhost(String(k))) continue;
          ghosts++;
          expect(cache.has(String(k))).toBe(false);
        }
        expect(ghosts).toBe(cache.queues.ghost.entries);
        // A key the ghost remembers comes back straight into main.
        const remembered = [...Array(3_001).keys()].find((k) => cache.inGhost(String(k)));
        if (remembered !== undefined) {
          cache.set(String(remembered), 0, { sizeBytes: 100 });
          expect(cache.inspect(String(remembered))?.queue).toBe('main');
        }
      }),
      { numRuns: 100 },
    );
  });

  it('main reinserts an accessed entry with its counter decremented instead of evicting it', () => {
    const cache = new S3FifoCache<number>({ maxBytes: 1_000 });
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, i, { sizeBytes: 100 });
    // Warm-up put k1..k9 in main (k0 in small); k1 is main's oldest.
    expect(cache.inspect('k1')?.queue).toBe('main');
    for (let i = 0; i < 5; i++) cache.get('k1');
    expect(cache.inspect('k1')?.freq).toBe(s3fifoMaxFreq);
    cache.set('new', 0, { sizeBytes: 100 }); // small gives up k0 (never read) to the ghost
    cache.get('new');
    cache.get('new');
    // small moves `new` (read twice) to main, which is now over its share: main's oldest, k1, is
    // reinserted with its counter decremented, and the next one, k2 (never read), is evicted.
    cache.set('newer', 0, { sizeBytes: 100 });
    expect(cache.inspect('new')?.queue).toBe('main');
    expect(cache.inspect('k1')).toEqual({ queue: 'main', freq: s3fifoMaxFreq - 1 });
    expect(cache.has('k2')).toBe(false);
  });
});

describe('LFU with dynamic aging', () => {
  it('a newcomer starts at the cache age plus one, so popularity from long ago decays', () => {
    const cache = new LfuCache<number>({ maxBytes: 300 });
    cache.set('old', 0, { sizeBytes: 100 });
    for (let i = 0; i < 3; i++) cache.get('old'); // priority 4
    for (let i = 0; i < 6; i++) {
      cache.set(`n${i}`, i, { sizeBytes: 100 });
      cache.get(`n${i}`);
    }
    // Each eviction raised the age; the newest entries now start at or above old's priority.
    expect(cache.age).toBeGreaterThanOrEqual(2);
    expect(cache.priorityOf('n5')).toBe(cache.age + 2);
    cache.set('x', 0, { sizeBytes: 100 });
    cache.set('y', 0, { sizeBytes: 100 });
    expect(cache.has('old')).toBe(false);
  });

  it('without aging, the most frequently used entry is never the one evicted', () => {
    const cache = new LfuCache<number>({ maxBytes: 300, aging: false });
    cache.set('old', 0, { sizeBytes: 100 });
    for (let i = 0; i < 3; i++) cache.get('old');
    for (let i = 0; i < 20; i++) {
      cache.set(`n${i}`, i, { sizeBytes: 100 });
      cache.get(`n${i}`);
    }
    expect(cache.has('old')).toBe(true);
    expect(cache.age).toBe(0);
  });
});
