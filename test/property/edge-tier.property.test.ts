import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EdgeCache } from '../../edge/edge-cache.ts';
import { memoryTier } from '../../edge/memory-tier.ts';
import type { OriginRead } from '../../edge/origin-client.ts';
import type { EdgeEntry } from '../../edge/tier.ts';
import { evictionPolicies } from '../../shared/eviction/index.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';
import { deferred, originRead } from '../support/fixtures.ts';

// At least 100 runs each (STYLE.md §8); fast-check prints the seed and path on failure.
const runs = { numRuns: Number(process.env.STRATA_PROPERTY_RUNS ?? 200) };

const entry = (key: string, value: Uint8Array, version: number, expiresAtMs: number): EdgeEntry => ({
  namespace: 'ns',
  key,
  value,
  contentType: 'application/octet-stream',
  version,
  createdAtMs: 0,
  expiresAtMs,
  tags: [],
  filledFrom: 'memory',
});

const keyArb = fc.string({ minLength: 1, maxLength: 20 });

describe.each(evictionPolicies)('edge tier properties (%s)', (policy) => {
  it('round-trip: a stored value is read back unchanged', () => {
    fc.assert(
      fc.property(keyArb, fc.uint8Array({ maxLength: 2048 }), fc.nat(), (key, value, version) => {
        const tier = memoryTier({ maxBytes: 1 << 20, policy });
        expect(tier.set(entry(key, value, version, Date.now() + 60_000))).toBe(true);
        expect([...(tier.get('ns', key)?.value ?? [])]).toEqual([...value]);
      }),
      runs,
    );
  });

  it('delete ⇒ miss, and a purge ⇒ miss for every older version', () => {
    fc.assert(
      fc.property(keyArb, fc.nat({ max: 1000 }), fc.nat({ max: 1000 }), (key, stored, purged) => {
        const tier = memoryTier({ maxBytes: 1 << 20, policy });
        tier.set(entry(key, new Uint8Array([1]), stored, Date.now() + 60_000));
        const message: PurgeMessage = {
          type: 'purge',
          epoch: 'e',
          seq: 1,
          namespace: 'ns',
          keys: [key],
          tags: [],
          prefix: null,
          version: purged,
          action: 'delete',
          ts: 0,
        };
        tier.purge(message);
        expect(tier.get('ns', key) === undefined).toBe(stored < purged);
        tier.delete('ns', key);
        expect(tier.get('ns', key)).toBeUndefined();
      }),
      runs,
    );
  });

  it('TTL expiry with a fake clock: served strictly before expiry, never at or after it', () => {
    fc.assert(
      fc.property(
        keyArb,
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 200_000 }),
        (key, ttlMs, elapsed) => {
          let now = 1_700_000_000_000;
          const tier = memoryTier({ maxBytes: 1 << 20, now: () => now, policy });
          tier.set(entry(key, new Uint8Array([7]), 1, now + ttlMs));
          now += elapsed;
          expect(tier.get('ns', key) !== undefined).toBe(elapsed < ttlMs);
        },
      ),
      runs,
    );
  });

  it('the tier never holds more bytes than its budget', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(keyArb, fc.integer({ min: 0, max: 5000 })), { maxLength: 200 }), (writes) => {
        const tier = memoryTier({ maxBytes: 20_000, policy });
        for (const [key, size] of writes) tier.set(entry(key, new Uint8Array(size), 1, Date.now() + 60_000));
        expect(tier.bytes).toBeLessThanOrEqual(20_000);
      }),
      runs,
    );
  });
});

type Op =
  | { kind: 'write'; key: number }
  | { kind: 'deliver' }
  | { kind: 'startFill'; key: number }
  | { kind: 'originReads'; fill: number }
  | { kind: 'respond'; fill: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), key: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('deliver' as const) }),
  fc.record({ kind: fc.constant('startFill' as const), key: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('originReads' as const), fill: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('respond' as const), fill: fc.nat({ max: 7 }) }),
);

describe.each(evictionPolicies)('no stale set (%s)', (policy) => {
  it('under random interleavings of writes, fills and purge deliveries, the tier never holds a version older than a delivered purge', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
        // The origin: current version per key; each write queues a purge for the edge.
        const originVersion = [1, 1, 1];
        const undelivered: PurgeMessage[] = [];
        const deliveredFloor = [0, 0, 0];
        type Fill = {
          key: number;
          gate: ReturnType<typeof deferred<OriginRead | null>>;
          snapshot?: number;
          done: Promise<unknown>;
        };
        const fills: Fill[] = [];
        const pendingGates: Array<{ key: number; gate: ReturnType<typeof deferred<OriginRead | null>> }> = [];
        const cache = new EdgeCache({
          tier: memoryTier({ maxBytes: 1 << 20, policy }),
          maxTtlMs: 60_000,
          load: async (_ns, key) => {
            const gate = deferred<OriginRead | null>();
            pendingGates.push({ key: Number(key), gate });
            return await gate.promise;
          },
        });
        const check = () => {
          for (let k = 0; k < 3; k++) {
            const held = cache.tier.get('ns', String(k));
            if (held) expect(held.version).toBeGreaterThanOrEqual(deliveredFloor[k]!);
          }
        };
        let seq = 0;
        for (const op of ops) {
          if (op.kind === 'write') {
            originVersion[op.key]! += 1;
            undelivered.push({
              type: 'purge',
              epoch: 'e',
              seq: ++seq,
              namespace: 'ns',
              keys: [String(op.key)],
              tags: [],
              prefix: null,
              version: originVersion[op.key]!,
              action: 'update',
              ts: 0,
            });
          } else if (op.kind === 'deliver') {
            const message = undelivered.shift();
            if (message) {
              cache.apply(message);
              const k = Number(message.keys[0]);
              deliveredFloor[k] = Math.max(deliveredFloor[k]!, message.version);
            }
          } else if (op.kind === 'startFill') {
            const before = pendingGates.length;
            const done = cache.read('ns', String(op.key)).catch(() => {});
            await Promise.resolve();
            if (pendingGates.length > before) {
              const started = pendingGates[pendingGates.length - 1]!;
              fills.push({ key: op.key, gate: started.gate, done });
            }
          } else if (op.kind === 'originReads') {
            const fill = fills[op.fill];
            if (fill && fill.snapshot === undefined) fill.snapshot = originVersion[fill.key]!;
          } else {
            const fill = fills[op.fill];
            if (fill) {
              // The origin read happens no later than the response.
              const version = fill.snapshot ?? originVersion[fill.key]!;
              fill.gate.resolve(originRead(`v${version}`, version));
              await fill.done;
            }
          }
          check();
        }
        // Deliver everything still queued: the tier must then hold only current versions.
        for (const message of undelivered.splice(0)) {
          cache.apply(message);
          const k = Number(message.keys[0]);
          deliveredFloor[k] = Math.max(deliveredFloor[k]!, message.version);
        }
        for (const fill of fills) {
          const version = fill.snapshot ?? originVersion[fill.key]!;
          fill.gate.resolve(originRead(`v${version}`, version));
          await fill.done;
        }
        check();
        for (let k = 0; k < 3; k++) {
          const held = cache.tier.get('ns', String(k));
          if (held && deliveredFloor[k]! > 0) expect(held.version).toBe(originVersion[k]);
        }
      }),
      { numRuns: Number(process.env.STRATA_PROPERTY_RUNS ?? 300) },
    );
  });
});
