import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EdgeCache, type OriginRead } from '../../edge/core/edge-cache.ts';
import { memoryTier } from '../../edge/core/memory-tier.ts';
import type { EdgeEntry, EdgeTier, SharedEdgeTier } from '../../edge/core/tier.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';
import { deferred, originRead } from '../support/fixtures.ts';

/** A tier the suite runs against: a near-user tier, or a shared second tier (whose calls answer with promises). */
export type TierUnderTest = EdgeTier | SharedEdgeTier;

/** Whether `tier` is a shared tier (it has a `name`; near-user tiers do not). */
function isShared(tier: TierUnderTest): tier is SharedEdgeTier {
  return 'name' in tier && typeof tier.name === 'string';
}

/** What the suite asks a factory for: a fresh, empty tier. */
export interface EdgeTierFactoryOptions {
  /** Byte budget of the tier (`EDGE_MAX_BYTES`). */
  readonly maxBytes: number;
  /** Unix-ms clock the tier must use when it has the `injectedClock` capability. */
  readonly now: () => number;
  /**
   * With the `sharedStorage` capability: a tier this one must share its
   * storage with (a second instance, as another isolate of a colo); absent:
   * fresh storage.
   */
  readonly shareWith?: TierUnderTest;
}

/** What an implementation can do; a case that needs a missing capability is skipped, and says so in its name. */
export interface EdgeTierCapabilities {
  /** Takes the suite's clock (`now`), so expiry can be tested with fake time. */
  readonly injectedClock: boolean;
  /** Keeps `bytes` within `maxBytes` at every moment. */
  readonly byteBudget: boolean;
  /** Several instances can share one storage (`shareWith`), each applying purges on its own: shared tiers. */
  readonly sharedStorage?: boolean;
}

export interface EdgeTierSuiteOptions {
  /** fast-check runs per property (at least 100). */
  readonly numRuns: number;
}

const minute = 60_000;

/** A purge message of namespace `ns` (fields the tier reads; the rest are fixed). */
function purgeOf(over: Partial<PurgeMessage> & Pick<PurgeMessage, 'version'>): PurgeMessage {
  return {
    type: 'purge',
    position: 'p',
    namespace: 'ns',
    keys: [],
    tags: [],
    prefix: null,
    action: 'delete',
    ts: 0,
    ...over,
  };
}

/**
 * The `EdgeTier` conformance suite (one per seam, like unstorage's
 * `testDriver` and BentoCache's exported test suite): every near-user tier
 * must pass it. `makeTier` is called once per case (or per property run) and
 * must return an empty tier. Uses only vitest, fast-check and web-standard
 * APIs, so it also runs inside workerd (`test/workers/`). Every tier call is
 * awaited, so a shared tier, whose calls answer with promises, runs the same
 * cases; its no-stale-set property runs it behind a memory tier, as the edge does.
 */
export function runEdgeTierConformance(
  name: string,
  makeTier: (options: EdgeTierFactoryOptions) => TierUnderTest,
  capabilities: EdgeTierCapabilities,
  options: EdgeTierSuiteOptions,
): void {
  const runs = { numRuns: options.numRuns };
  const fresh = (maxBytes = 1 << 20, now: () => number = Date.now) => makeTier({ maxBytes, now });
  // Entries live a minute past the real clock unless a case says otherwise.
  const entry = (key: string, value: Uint8Array, version: number, over: Partial<EdgeEntry> = {}): EdgeEntry => ({
    namespace: 'ns',
    key,
    value,
    contentType: 'application/octet-stream',
    version,
    createdAtMs: 0,
    expiresAtMs: Date.now() + minute,
    tags: [],
    filledFrom: 'memory',
    ...over,
  });
  const keyArb = fc.string({ minLength: 1, maxLength: 20 });
  // A lifetime (ms) and how far the fake clock then moves (ms), for the expiry cases.
  const ttlArb = fc.integer({ min: 1, max: 100_000 });
  const elapsedArb = fc.integer({ min: 0, max: 200_000 });

  describe(`EdgeTier conformance: ${name}`, () => {
    it('round-trip: a stored value is read back unchanged, with its content type, version and tags', async () => {
      await fc.assert(
        fc.asyncProperty(keyArb, fc.uint8Array({ maxLength: 2048 }), fc.nat(), async (key, value, version) => {
          const tier = fresh();
          expect(await tier.set(entry(key, value, version, { contentType: 'text/x-test', tags: ['t'] }))).toBe(true);
          const held = await tier.get('ns', key);
          expect([...(held?.value ?? [])]).toEqual([...value]);
          expect(held?.contentType).toBe('text/x-test');
          expect(held?.version).toBe(version);
          expect(held?.tags).toEqual(['t']);
        }),
        runs,
      );
    });

    it('a key never stored, or stored in another namespace, is a miss', async () => {
      const tier = fresh();
      await tier.set(entry('k', new Uint8Array([1]), 1, { namespace: 'other' }));
      expect(await tier.get('ns', 'k')).toBeUndefined();
      expect(await tier.get('ns', 'never')).toBeUndefined();
    });

    it('delete ⇒ miss, and a purge ⇒ miss for every older version', async () => {
      await fc.assert(
        fc.asyncProperty(keyArb, fc.nat({ max: 1000 }), fc.nat({ max: 1000 }), async (key, stored, purged) => {
          const tier = fresh();
          await tier.set(entry(key, new Uint8Array([1]), stored));
          const removed = await tier.purge(purgeOf({ keys: [key], version: purged }));
          expect((await tier.get('ns', key)) === undefined).toBe(stored < purged);
          expect(removed).toBe(stored < purged ? 1 : 0);
          await tier.delete('ns', key);
          expect(await tier.get('ns', key)).toBeUndefined();
        }),
        runs,
      );
    });

    it('a set never replaces a higher version of the same key: the tier holds the highest version written', async () => {
      await fc.assert(
        fc.asyncProperty(
          keyArb,
          fc.array(fc.nat({ max: 50 }), { minLength: 1, maxLength: 10 }),
          async (key, versions) => {
            const tier = fresh();
            for (const version of versions) await tier.set(entry(key, new Uint8Array([version % 256]), version));
            expect((await tier.get('ns', key))?.version).toBe(Math.max(...versions));
          },
        ),
        runs,
      );
    });

    it('a purge by tag or prefix removes the older matching entries of its namespace and nothing else', async () => {
      const tier = fresh();
      const one = new Uint8Array([1]);
      await tier.set(entry('user:1', one, 5, { tags: ['red'] }));
      await tier.set(entry('user:2', one, 20, { tags: ['red'] }));
      await tier.set(entry('item:1', one, 5, { tags: ['blue'] }));
      await tier.set(entry('user:3', one, 5, { namespace: 'other', tags: ['red'] }));
      expect(await tier.purge(purgeOf({ tags: ['red'], version: 10 }))).toBe(1);
      expect(await tier.get('ns', 'user:1')).toBeUndefined();
      expect(await tier.get('ns', 'user:2')).toBeDefined();
      expect(await tier.get('ns', 'item:1')).toBeDefined();
      expect(await tier.get('other', 'user:3')).toBeDefined();

      await tier.set(entry('user:4', one, 5));
      expect(await tier.purge(purgeOf({ prefix: 'user:', version: 10 }))).toBe(1);
      expect(await tier.get('ns', 'user:4')).toBeUndefined();
      expect(await tier.get('ns', 'user:2')).toBeDefined();
      expect(await tier.get('ns', 'item:1')).toBeDefined();
      expect(await tier.get('other', 'user:3')).toBeDefined();
    });

    it('clear drops every entry and size and bytes count what is held', async () => {
      const tier = fresh();
      expect(tier.size).toBe(0);
      await tier.set(entry('a', new Uint8Array(10), 1));
      await tier.set(entry('b', new Uint8Array(10), 1));
      expect(tier.size).toBe(2);
      expect(tier.bytes).toBeGreaterThanOrEqual(20);
      await tier.clear();
      expect(tier.size).toBe(0);
      expect(await tier.get('ns', 'a')).toBeUndefined();
    });

    it('a namespace flush removes every older entry of its namespace, keeps newer ones and other namespaces', async () => {
      const tier = fresh();
      await tier.set(entry('a', new Uint8Array([1]), 5));
      await tier.set(entry('b', new Uint8Array([2]), 20));
      await tier.set(entry('a', new Uint8Array([3]), 5, { namespace: 'other' }));
      await tier.purge(purgeOf({ action: 'flush', version: 10 }));
      expect(await tier.get('ns', 'a')).toBeUndefined();
      expect((await tier.get('ns', 'b'))?.version).toBe(20);
      expect((await tier.get('other', 'a'))?.version).toBe(5);
    });

    it('an entry past its expiry but within its grace windows is kept, with its lifecycle fields', async () => {
      const tier = fresh();
      const stale = entry('g', new Uint8Array([4]), 3, {
        expiresAtMs: Date.now() - 1_000,
        staleWhileRevalidateMs: minute,
        staleIfErrorMs: 2 * minute,
        softPurgedAtMs: Date.now() - 1_000,
        refreshMs: 120,
        strong: true,
      });
      expect(await tier.set(stale)).toBe(true);
      const held = await tier.get('ns', 'g');
      expect(held?.staleWhileRevalidateMs).toBe(minute);
      expect(held?.staleIfErrorMs).toBe(2 * minute);
      expect(held?.softPurgedAtMs).toBe(stale.softPurgedAtMs);
      expect(held?.refreshMs).toBe(120);
      expect(held?.strong).toBe(true);
      expect(held?.expiresAtMs).toBe(stale.expiresAtMs);
    });

    // Shared tiers have no peek: the edge's fast path looks only at its near-user tier.
    it.skipIf(capabilities.sharedStorage === true)(
      'peek (near-user tiers only) answers what get answers: stored, absent, purged, expired',
      async () => {
        await fc.assert(
          fc.asyncProperty(keyArb, ttlArb, elapsedArb, fc.nat({ max: 10 }), async (key, ttlMs, elapsed, purged) => {
            const clock = { now: 1_700_000_000_000 };
            const tier = fresh(1 << 20, () => clock.now) as EdgeTier;
            await tier.set(entry(key, new Uint8Array([5]), 5, { expiresAtMs: clock.now + ttlMs }));
            await tier.purge(purgeOf({ keys: [key], version: purged }));
            clock.now += elapsed;
            const peeked = tier.peek('ns', key);
            expect(peeked).toBe(tier.get('ns', key));
            expect(peeked !== undefined).toBe(elapsed < ttlMs && purged <= 5);
            expect(tier.peek('ns', `${key}-never`)).toBeUndefined();
          }),
          runs,
        );
      },
    );

    it('an entry already expired is not stored', async () => {
      const tier = fresh();
      expect(await tier.set(entry('old', new Uint8Array([1]), 1, { expiresAtMs: Date.now() - 1 }))).toBe(false);
      expect(await tier.get('ns', 'old')).toBeUndefined();
    });

    // A missing capability shows as a skipped case, never as a pass.
    it.skipIf(!capabilities.injectedClock)(
      'TTL expiry with a fake clock: served strictly before expiry, never at or after it',
      async () => {
        await fc.assert(
          fc.asyncProperty(keyArb, ttlArb, elapsedArb, async (key, ttlMs, elapsed) => {
            let now = 1_700_000_000_000;
            const tier = fresh(1 << 20, () => now);
            await tier.set(entry(key, new Uint8Array([7]), 1, { expiresAtMs: now + ttlMs }));
            now += elapsed;
            expect((await tier.get('ns', key)) !== undefined).toBe(elapsed < ttlMs);
          }),
          runs,
        );
      },
    );

    it.skipIf(!capabilities.byteBudget)('the tier never holds more bytes than its budget', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(keyArb, fc.integer({ min: 0, max: 5000 })), { maxLength: 200 }),
          async (writes) => {
            const tier = fresh(20_000);
            for (const [key, size] of writes) {
              await tier.set(entry(key, new Uint8Array(size), 1));
              expect(tier.bytes).toBeLessThanOrEqual(20_000);
            }
          },
        ),
        runs,
      );
    });

    // A shared tier's instances each follow the purge log on their own and cannot enumerate the storage.
    it.skipIf(!capabilities.sharedStorage)(
      'shared storage: a purge applied by one instance refuses the older copies another instance stored, by key, tag and prefix',
      async () => {
        const writer = fresh();
        const reader = makeTier({ maxBytes: 1 << 20, now: Date.now, shareWith: writer });
        const one = new Uint8Array([1]);
        await writer.set(entry('user:1', one, 5, { tags: ['red'] }));
        await writer.set(entry('user:2', one, 20, { tags: ['red'] }));
        await writer.set(entry('item:1', one, 5));
        await writer.set(entry('item:2', one, 5));
        await writer.set(entry('other:1', one, 5));
        expect((await reader.get('ns', 'user:1'))?.version).toBe(5);
        await reader.purge(purgeOf({ tags: ['red'], version: 10 }));
        await reader.purge(purgeOf({ prefix: 'item:', version: 10 }));
        expect(await reader.get('ns', 'user:1')).toBeUndefined();
        expect((await reader.get('ns', 'user:2'))?.version).toBe(20);
        expect(await reader.get('ns', 'item:1')).toBeUndefined();
        expect(await reader.get('ns', 'item:2')).toBeUndefined();
        expect((await reader.get('ns', 'other:1'))?.version).toBe(5);
        // The writer applied no purge: its own view still serves the copy (until its purge source brings it).
        expect((await writer.get('ns', 'user:1'))?.version).toBe(5);
        await reader.purge(purgeOf({ keys: ['other:1'], version: 10 }));
        expect(await reader.get('ns', 'other:1')).toBeUndefined();
        await writer.set(entry('user:1', one, 11, { tags: ['red'] }));
        expect((await reader.get('ns', 'user:1'))?.version).toBe(11);
      },
    );

    // Storage deletes by location only: one instance's purge must not drop the newer copy another stored over its own.
    it.skipIf(!capabilities.sharedStorage)(
      'shared storage: a purge or a reset keeps the newer copy another instance stored over an older one this instance stored',
      async () => {
        const first = fresh();
        const second = makeTier({ maxBytes: 1 << 20, now: Date.now, shareWith: first });
        const one = new Uint8Array([1]);
        await first.set(entry('k', one, 5, { tags: ['red'] }));
        await first.set(entry('j', one, 5, { tags: ['red'] }));
        await second.set(entry('k', one, 12, { tags: ['red'] }));
        expect(await first.purge(purgeOf({ keys: ['k'], version: 10 }))).toBe(0);
        expect((await second.get('ns', 'k'))?.version).toBe(12);
        expect((await first.get('ns', 'k'))?.version).toBe(12);
        // By tag: the newer copy stays, the older one this instance stored is gone for every instance.
        await first.purge(purgeOf({ tags: ['red'], version: 11 }));
        expect((await second.get('ns', 'k'))?.version).toBe(12);
        expect(await second.get('ns', 'j')).toBeUndefined();
        // A reset of the first instance deletes its own copies, not the second's newer one.
        await first.set(entry('i', one, 5));
        await second.set(entry('i', one, 6));
        await first.set(entry('h', one, 5));
        await first.clear();
        expect((await second.get('ns', 'i'))?.version).toBe(6);
        expect((await second.get('ns', 'k'))?.version).toBe(12);
        expect(await second.get('ns', 'h')).toBeUndefined();
      },
    );

    it.skipIf(!capabilities.sharedStorage || !capabilities.injectedClock)(
      'shared storage: an instance refuses copies filled up to its last clear (a reset, or its start), and serves later fills',
      async () => {
        let now = 1_700_000_000_000;
        const clock = () => now;
        const writer = fresh(1 << 20, clock);
        const reader = makeTier({ maxBytes: 1 << 20, now: clock, shareWith: writer });
        const one = new Uint8Array([1]);
        const live = { expiresAtMs: now + minute };
        await writer.set(entry('a', one, 1, live));
        now += 1;
        expect((await reader.get('ns', 'a'))?.version).toBe(1);
        await reader.clear();
        expect(await reader.get('ns', 'a')).toBeUndefined();
        expect((await writer.get('ns', 'a'))?.version).toBe(1);
        now += 1;
        await writer.set(entry('a', one, 2, live));
        expect((await reader.get('ns', 'a'))?.version).toBe(2);
      },
    );

    it('no stale set: under random interleavings of writes, fills and purge deliveries, the tier never holds a version older than a delivered purge', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => noStaleSet(fresh(), ops)),
        { numRuns: Math.ceil(options.numRuns * 1.5) },
      );
    });
  });
}

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

/** Plays one interleaving against an edge cache over `tier` and checks the no-stale-set rule after every step. */
async function noStaleSet(tier: TierUnderTest, ops: readonly Op[]): Promise<void> {
  // Every step here settles through promises alone; yield to the event loop once per run, so a long property
  // never starves the test runner's own messages (vitest gives up on a worker silent for 60 s).
  await new Promise((resolve) => setTimeout(resolve, 0));
  // The origin: current version per key; each write queues a purge for the edge.
  const originVersion = [1, 1, 1];
  const undelivered: PurgeMessage[] = [];
  const deliveredFloor = [0, 0, 0];
  type Gate = ReturnType<typeof deferred<OriginRead | null>>;
  type Fill = { key: number; gate: Gate; snapshot?: number; done: Promise<unknown>; responded?: boolean };
  const fills: Fill[] = [];
  const pendingGates: Array<{ key: number; gate: Gate }> = [];
  let loadStarted: (() => void) | undefined;
  const shared = isShared(tier) ? tier : undefined;
  const cache = new EdgeCache({
    // A shared tier sits behind a memory tier, as at the edge.
    tier: shared ? memoryTier({ maxBytes: 1 << 20 }) : (tier as EdgeTier),
    shared,
    maxTtlMs: minute,
    load: async (_ns, key) => {
      const gate = deferred<OriginRead | null>();
      pendingGates.push({ key: Number(key), gate });
      loadStarted?.();
      return await gate.promise;
    },
  });
  /** What the tiers would serve for key `k`: the memory tier's copy, and the shared tier's. */
  const held = async (k: number) => [cache.tier.get('ns', String(k)), await shared?.get('ns', String(k))];
  const check = async () => {
    for (let k = 0; k < 3; k++) {
      for (const copy of await held(k)) if (copy) expect(copy.version).toBeGreaterThanOrEqual(deliveredFloor[k]!);
    }
  };
  const deliver = (message: PurgeMessage) => {
    cache.apply(message);
    const k = Number(message.keys[0]);
    deliveredFloor[k] = Math.max(deliveredFloor[k]!, message.version);
  };
  let seq = 0;
  for (const op of ops) {
    if (op.kind === 'write') {
      originVersion[op.key]! += 1;
      undelivered.push(
        purgeOf({ position: `p${++seq}`, keys: [String(op.key)], version: originVersion[op.key]!, action: 'update' }),
      );
    } else if (op.kind === 'deliver') {
      const message = undelivered.shift();
      if (message) deliver(message);
    } else if (op.kind === 'startFill') {
      const before = pendingGates.length;
      // A read of a key with a fill in flight joins it (or hits the memory tier): it starts no load.
      const joins = fills.some((f) => f.key === op.key && !f.responded);
      const started = deferred<void>();
      loadStarted = () => started.resolve();
      const done = cache.read('ns', String(op.key)).catch(() => {});
      // A shared-tier lookup comes first: wait until the read loads from the origin or ends.
      if (joins) await Promise.resolve();
      else await Promise.race([started.promise, done]);
      loadStarted = undefined;
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
        fill.responded = true;
        await fill.done;
      }
    }
    await check();
  }
  // Deliver everything still queued: the tier must then hold only current versions.
  for (const message of undelivered.splice(0)) deliver(message);
  for (const fill of fills) {
    const version = fill.snapshot ?? originVersion[fill.key]!;
    fill.gate.resolve(originRead(`v${version}`, version));
    fill.responded = true;
    await fill.done;
  }
  await check();
  for (let k = 0; k < 3; k++) {
    for (const copy of await held(k)) if (copy && deliveredFloor[k]! > 0) expect(copy.version).toBe(originVersion[k]);
  }
}
