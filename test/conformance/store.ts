import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheService } from '../../origin/cache-service.ts';
import { compressedContentType } from '../../origin/compression.ts';
import type { NamespaceVersionStore } from '../../origin/namespaces/versions.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import {
  type EntryInput,
  OnceConflictError,
  type Store,
  type StoredEntry,
  type SwapChange,
  type TieredStore,
} from '../../origin/store/store.ts';
import { encryptedContentType, parseKeyring } from '../../shared/crypto.ts';
import { storeLeaseConformance, storeLifecycleConformance } from './store-lifecycle.ts';
import { keyListingConformance } from './store-listing.ts';

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);
const input = (value: string | Uint8Array, over: Partial<EntryInput> = {}): EntryInput => ({
  value: typeof value === 'string' ? bytes(value) : value,
  contentType: 'text/plain',
  ttlMs: 60_000,
  tags: [],
  ...over,
});

let counter = 0;
/** A namespace unique to one test, so drivers sharing a server never see each other's keys. */
const freshNamespace = () => `conf-${process.pid}-${Date.now().toString(36)}-${counter++}`;

/** What a store under test offers beyond {@link Store}. */
export interface StoreCapabilities<S extends Store> {
  /**
   * For a {@link TieredStore} (the facades the origin serves from): how to
   * reach its tiered reads, health and "accepted locally" — the identity
   * function, type-checked. Runs the tiered checks against a healthy store.
   */
  readonly tiered?: (store: S) => TieredStore;
  /** Keys in different Redis Cluster hash slots cannot be swapped together (`cross-slot`). */
  readonly hashSlots?: boolean;
  /**
   * Where the store keeps namespace versions (flush): runs the flush checks,
   * entry versions against the namespace version, with concurrent writers.
   */
  readonly namespaceVersions?: (store: S) => NamespaceVersionStore;
}

/**
 * The `Store` conformance suite (STYLE.md §1; the shape of unstorage's
 * `testDriver` and BentoCache's `test_suite.ts`): every driver, and every
 * facade over one, must pass it. `make` is called once per suite, `close`
 * after; capability flags add the checks only some stores can pass.
 */
export function storeConformance<S extends Store>(
  name: string,
  make: () => Promise<S> | S,
  capabilities: StoreCapabilities<S> = {},
): void {
  describe(`Store conformance: ${name}`, () => {
    let store: S;
    beforeAll(async () => {
      store = await make();
    });
    afterAll(async () => {
      await store?.close();
    });

    it('a value written can be read back byte for byte with its content type', async () => {
      const ns = freshNamespace();
      const value = new Uint8Array([0, 1, 2, 255, 254, 0, 10, 13]);
      const written = await store.set(ns, 'bin', input(value, { contentType: 'application/x-test' }));
      const read = await store.get(ns, 'bin');
      expect(read).not.toBeNull();
      expect([...read!.value]).toEqual([...value]);
      expect(read!.contentType).toBe('application/x-test');
      expect(read!.version).toBe(written.version);
      expect(read!.expiresAtMs).toBeGreaterThan(Date.now());
    });

    it('a key never written is a miss', async () => {
      expect(await store.get(freshNamespace(), 'nothing')).toBeNull();
    });

    it('versions of one key only increase, across overwrite and delete', async () => {
      const ns = freshNamespace();
      const v1 = (await store.set(ns, 'k', input('a'))).version;
      const v2 = (await store.set(ns, 'k', input('b'))).version;
      const removal = await store.delete(ns, 'k');
      const v3 = (await store.set(ns, 'k', input('c'))).version;
      expect(v2).toBeGreaterThan(v1);
      expect(removal.version).toBeGreaterThan(v2);
      expect(v3).toBeGreaterThan(v2);
      expect(new TextDecoder().decode((await store.get(ns, 'k'))!.value)).toBe('c');
    });

    it('a delete makes the key miss and reports whether it existed', async () => {
      const ns = freshNamespace();
      await store.set(ns, 'gone', input('x'));
      expect((await store.delete(ns, 'gone')).removed).toBe(1);
      expect(await store.get(ns, 'gone')).toBeNull();
      expect((await store.delete(ns, 'gone')).removed).toBe(0);
    });

    it('a write with an idempotency record is applied once per request id; a redelivery returns the first result', async () => {
      const ns = freshNamespace();
      const once = { id: `req-${counter++}`, fingerprint: 'fp-1', ttlMs: 60_000 };
      const first = await store.set(ns, 'once', input('a', { once }));
      const again = await store.set(ns, 'once', input('a', { once }));
      expect(again.version).toBe(first.version);
      expect(again.expiresAtMs).toBe(first.expiresAtMs);
      expect((await store.get(ns, 'once'))!.version).toBe(first.version);
      // Another writer since: the redelivery still changes nothing.
      const other = await store.set(ns, 'once', input('b'));
      expect((await store.set(ns, 'once', input('a', { once }))).version).toBe(first.version);
      expect(new TextDecoder().decode((await store.get(ns, 'once'))!.value)).toBe('b');
      expect((await store.get(ns, 'once'))!.version).toBe(other.version);
      await expect(store.set(ns, 'once', input('c', { once: { ...once, fingerprint: 'fp-2' } }))).rejects.toThrow(
        OnceConflictError,
      );
    });

    it('a batch redelivered after a partial write applies only the keys not yet recorded', async () => {
      const ns = freshNamespace();
      const once = { id: `req-${counter++}`, fingerprint: 'fp', ttlMs: 60_000 };
      // The first delivery got as far as key a.
      const a = (await store.set(ns, 'a', input('A', { once }))).version;
      const batch = new Map([
        ['a', input('A', { once })],
        ['b', input('B', { once })],
      ]);
      const first = await store.setMany(ns, batch);
      expect(first.get('a')!.version).toBe(a);
      expect((await store.get(ns, 'b'))!.version).toBe(first.get('b')!.version);
      const again = await store.setMany(ns, batch);
      expect(again.get('a')!.version).toBe(a);
      expect(again.get('b')!.version).toBe(first.get('b')!.version);
    });

    it('a delete with an idempotency record is applied once per request id', async () => {
      const ns = freshNamespace();
      const once = { id: `req-${counter++}`, fingerprint: 'fp', ttlMs: 60_000 };
      await store.set(ns, 'd', input('x'));
      const first = await store.delete(ns, 'd', once);
      expect(first.removed).toBe(1);
      const rewritten = await store.set(ns, 'd', input('y'));
      const again = await store.delete(ns, 'd', once);
      expect(again).toEqual(first);
      expect((await store.get(ns, 'd'))!.version).toBe(rewritten.version);
    });

    it('an entry expires after its TTL', async () => {
      const ns = freshNamespace();
      await store.set(ns, 'short', input('x', { ttlMs: 150 }));
      expect(await store.get(ns, 'short')).not.toBeNull();
      const deadline = Date.now() + 5_000;
      while ((await store.get(ns, 'short')) !== null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 25));
      expect(await store.get(ns, 'short')).toBeNull();
    });

    it('namespaces are isolated from each other', async () => {
      const a = freshNamespace();
      const b = freshNamespace();
      await store.set(a, 'same', input('in a'));
      expect(await store.get(b, 'same')).toBeNull();
      await store.delete(b, 'same');
      expect(await store.get(a, 'same')).not.toBeNull();
    });

    it('batch set then batch get equals single operations, and reports missing keys', async () => {
      const ns = freshNamespace();
      const entries = new Map<string, EntryInput>();
      for (let i = 0; i < 250; i++) entries.set(`key-${i}`, input(`value-${i}`));
      const stored = await store.setMany(ns, entries);
      expect(stored.size).toBe(250);
      const keys = [...entries.keys(), 'absent-1', 'absent-2'];
      const found = await store.getMany(ns, keys);
      expect(found.size).toBe(250);
      for (let i = 0; i < 250; i++) {
        const single = await store.get(ns, `key-${i}`);
        expect(new TextDecoder().decode(found.get(`key-${i}`)!.value)).toBe(`value-${i}`);
        expect(found.get(`key-${i}`)!.version).toBe(single!.version);
      }
      expect(found.has('absent-1')).toBe(false);
    });

    it('keys with unicode, spaces and punctuation round-trip', async () => {
      const ns = freshNamespace();
      const keys = ['ключ', 'a b', 'x:y:z', 'emoji-🙂', '*?[glob]', '{hash}tag'];
      for (const key of keys) await store.set(ns, key, input(key));
      for (const key of keys) expect(new TextDecoder().decode((await store.get(ns, key))!.value)).toBe(key);
    });

    it('a purge by keys, tags and prefix removes exactly the selected entries', async () => {
      const ns = freshNamespace();
      await store.set(ns, 'user:1', input('1', { tags: ['users'] }));
      await store.set(ns, 'user:2', input('2', { tags: ['users', 'vip'] }));
      await store.set(ns, 'order:1', input('o1', { tags: ['orders'] }));
      await store.set(ns, 'order:2', input('o2'));
      await store.set(ns, 'misc', input('m'));
      const byTag = await store.purge(ns, { keys: [], tags: ['users'], prefix: null });
      expect(byTag.removed).toBe(2);
      expect(await store.get(ns, 'user:1')).toBeNull();
      expect(await store.get(ns, 'user:2')).toBeNull();
      expect(await store.get(ns, 'order:1')).not.toBeNull();
      const byPrefix = await store.purge(ns, { keys: [], tags: [], prefix: 'order:' });
      expect(byPrefix.removed).toBe(2);
      expect(await store.get(ns, 'misc')).not.toBeNull();
      const byKey = await store.purge(ns, { keys: ['misc', 'never'], tags: [], prefix: null });
      expect(byKey.removed).toBe(1);
      expect(await store.get(ns, 'misc')).toBeNull();
    });

    it('a purge version is above every version it removed', async () => {
      const ns = freshNamespace();
      const a = await store.set(ns, 'a', input('a', { tags: ['t'] }));
      const b = await store.set(ns, 'b', input('b', { tags: ['t'] }));
      const purge = await store.purge(ns, { keys: [], tags: ['t'], prefix: null });
      expect(purge.version).toBeGreaterThan(Math.max(a.version, b.version));
    });

    it('concurrent writes to one key leave one of the written values and distinct versions', async () => {
      const ns = freshNamespace();
      const writes = await Promise.all(Array.from({ length: 20 }, (_, i) => store.set(ns, 'hot', input(`w${i}`))));
      const versions = new Set(writes.map((w) => w.version));
      expect(versions.size).toBe(20);
      const final = await store.get(ns, 'hot');
      const top = writes.reduce((a, b) => (b.version > a.version ? b : a));
      expect(final!.version).toBe(top.version);
      expect(new TextDecoder().decode(final!.value)).toBe(new TextDecoder().decode(top.value));
    });

    const swap = (ns: string, changes: readonly SwapChange[]) => {
      expect(store.swap, 'every driver offers compare-and-swap').toBeTypeOf('function');
      return store.swap!(ns, changes);
    };
    const set = (value: string) => ({ kind: 'set', input: input(value) }) as const;

    it('a swap applies every change when every key holds its expected version, with higher versions', async () => {
      const ns = freshNamespace();
      const a = await store.set(ns, '{s}a', input('a0'));
      const outcome = await swap(ns, [
        { key: '{s}a', expectedVersion: a.version, action: set('a1') },
        { key: '{s}b', expectedVersion: 0, action: set('b1') },
      ]);
      expect(outcome.kind).toBe('swapped');
      if (outcome.kind !== 'swapped') return;
      const newA = outcome.results.get('{s}a') as StoredEntry;
      expect(newA.version).toBeGreaterThan(a.version);
      const read = await store.getMany(ns, ['{s}a', '{s}b']);
      expect(new TextDecoder().decode(read.get('{s}a')!.value)).toBe('a1');
      expect(read.get('{s}a')!.version).toBe(newA.version);
      expect(new TextDecoder().decode(read.get('{s}b')!.value)).toBe('b1');
      const removal = await swap(ns, [
        { key: '{s}b', expectedVersion: read.get('{s}b')!.version, action: { kind: 'delete' } },
      ]);
      expect(removal.kind).toBe('swapped');
      expect(await store.get(ns, '{s}b')).toBeNull();
    });

    it('a swap applies nothing when any key moved past its expected version, a check included', async () => {
      const ns = freshNamespace();
      const a = await store.set(ns, '{s}a', input('a0'));
      const b = await store.set(ns, '{s}b', input('b0'));
      await store.set(ns, '{s}b', input('b-moved'));
      const outcome = await swap(ns, [
        { key: '{s}a', expectedVersion: a.version, action: set('a1') },
        { key: '{s}b', expectedVersion: b.version, action: { kind: 'check' } },
      ]);
      expect(outcome).toEqual({ kind: 'conflict' });
      expect(new TextDecoder().decode((await store.get(ns, '{s}a'))!.value)).toBe('a0');
      // Expecting absence fails on a live key, and succeeds after a delete (its tombstone counts as absent).
      expect(await swap(ns, [{ key: '{s}a', expectedVersion: 0, action: set('x') }])).toEqual({ kind: 'conflict' });
      await store.delete(ns, '{s}a');
      const after = await swap(ns, [{ key: '{s}a', expectedVersion: 0, action: set('x') }]);
      expect(after.kind).toBe('swapped');
    });

    it('concurrent read-increment-swap loops lose no increment', async () => {
      const ns = freshNamespace();
      const increment = async () => {
        for (;;) {
          const current = await store.get(ns, 'n');
          const next = String(Number(current ? new TextDecoder().decode(current.value) : '0') + 1);
          const outcome = await swap(ns, [{ key: 'n', expectedVersion: current?.version ?? 0, action: set(next) }]);
          if (outcome.kind === 'swapped') return;
        }
      };
      await Promise.all(Array.from({ length: 10 }, increment));
      expect(new TextDecoder().decode((await store.get(ns, 'n'))!.value)).toBe('10');
    });

    if (capabilities.hashSlots) {
      it('keys in different hash slots are refused as cross-slot, and nothing is written', async () => {
        const ns = freshNamespace();
        const outcome = await swap(ns, [
          { key: 'alpha', expectedVersion: 0, action: set('1') },
          { key: 'beta', expectedVersion: 0, action: set('2') },
        ]);
        expect(outcome).toEqual({ kind: 'cross-slot' });
        expect(await store.getMany(ns, ['alpha', 'beta'])).toEqual(new Map());
      });
    }

    /** The origin's service over this store: compression above 1 KiB, an encryption key. */
    const serviceOverStore = async () =>
      new CacheService({
        store: capabilities.tiered ? capabilities.tiered(store) : passThroughStore(store),
        bus: new InProcessPurgeBus({ retainedEntries: 16 }),
        defaultTtlSeconds: 60,
        maxValueBytes: 256 * 1024,
        keyring: await parseKeyring(`k1:${Buffer.alloc(32, 7).toString('base64')}`),
        compressMinBytes: 1024,
      });

    it('through the origin service, any value round-trips byte-exact with compression on, off or by size, encrypted or not', async () => {
      const ns = freshNamespace();
      const service = await serviceOverStore();
      const value = fc.oneof(
        fc.uint8Array({ maxLength: 4096 }),
        // Compressible: a short random pattern repeated past the threshold.
        fc
          .tuple(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.integer({ min: 1, max: 4000 }))
          .map(([unit, times]) => Uint8Array.from({ length: unit.length * times }, (_, i) => unit[i % unit.length]!)),
      );
      let n = 0;
      await fc.assert(
        fc.asyncProperty(
          value,
          fc.constantFrom('application/octet-stream', 'text/plain; charset=utf-8', 'application/x-ü'),
          fc.constantFrom(true, false, undefined),
          fc.boolean(),
          async (bytes, contentType, compress, encrypt) => {
            const key = `p${n++}`;
            await service.set(ns, key, { value: bytes, contentType, compress, encrypt });
            const read = await service.get(ns, key);
            expect(read.entry).not.toBeNull();
            expect(Buffer.from(read.entry!.value).equals(Buffer.from(bytes))).toBe(true);
            expect(read.entry!.contentType).toBe(contentType);
            const stored = (await store.get(ns, key))!;
            if (encrypt) expect(stored.contentType).toBe(encryptedContentType);
            else if (stored.contentType === compressedContentType) {
              expect(compress).not.toBe(false);
              expect(stored.value.byteLength).toBeLessThan(bytes.byteLength);
            } else {
              expect(stored.contentType).toBe(contentType);
              expect(Buffer.from(stored.value).equals(Buffer.from(bytes))).toBe(true);
            }
            const batch = await service.getMany(ns, [key]);
            expect(Buffer.from(batch.found.get(key)!.value).equals(Buffer.from(bytes))).toBe(true);
          },
        ),
        { numRuns: 60 },
      );
    });

    it('a compressible value above the threshold is stored compressed, and one with compress=false is not', async () => {
      const ns = freshNamespace();
      const service = await serviceOverStore();
      const text = bytes('{"id":1,"name":"strata","tags":["a","b"]}'.repeat(200));
      await service.set(ns, 'auto', { value: text, contentType: 'application/json' });
      await service.set(ns, 'off', { value: text, contentType: 'application/json', compress: false });
      const auto = (await store.get(ns, 'auto'))!;
      expect(auto.contentType).toBe(compressedContentType);
      expect(auto.value.byteLength).toBeLessThan(text.byteLength / 10);
      expect((await store.get(ns, 'off'))!.value.byteLength).toBe(text.byteLength);
    });

    storeLifecycleConformance(() => store, freshNamespace);
    storeLeaseConformance(() => store, freshNamespace);

    it('ping resolves while the backing server is up', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    const versionsOf = capabilities.namespaceVersions;
    if (versionsOf) {
      it('a flush bumps the namespace version above every entry written before it; later writes are at or above it', async () => {
        const versions = versionsOf(store);
        const ns = freshNamespace();
        const before = await Promise.all(['a', 'b', 'c'].map((k) => store.set(ns, k, input(k))));
        const highest = Math.max(...before.map((e) => e.version));
        const flushed = await versions.bump(ns, 'svc-test', highest + 1);
        expect(flushed).toMatchObject({ namespace: ns, by: 'svc-test' });
        for (const entry of before) expect(entry.version).toBeLessThan(flushed.version);
        // Written after the bump was acknowledged: visible under the new version.
        for (const k of ['a', 'd'])
          expect((await store.set(ns, k, input(k))).version).toBeGreaterThanOrEqual(flushed.version);
        expect((await versions.all()).get(ns)?.version).toBe(flushed.version);
      });

      it('a bump with an idempotency record happens once per request id; another request with the id is refused', async () => {
        const versions = versionsOf(store);
        const ns = freshNamespace();
        const once = { id: `flush-${counter++}`, fingerprint: 'fp', ttlMs: 60_000 };
        const first = await versions.bump(ns, 'svc', 0, once);
        expect(await versions.bump(ns, 'svc', 0, once)).toEqual(first);
        expect(await versions.history(ns)).toHaveLength(1);
        await expect(versions.bump(ns, 'svc', 0, { ...once, fingerprint: 'other' })).rejects.toThrow(OnceConflictError);
        expect((await versions.bump(ns, 'svc', 0)).version).toBeGreaterThan(first.version);
      });

      it('namespace versions only grow, honour the minimum, and keep their history newest first', async () => {
        const versions = versionsOf(store);
        const ns = freshNamespace();
        const other = freshNamespace();
        const first = await versions.bump(ns, 'one', 0);
        const second = await versions.bump(ns, 'two', 0);
        const far = first.version + 10_000_000_000;
        const third = await versions.bump(ns, 'three', far);
        expect(second.version).toBeGreaterThan(first.version);
        expect(third.version).toBe(far);
        expect(second.flushedAtMs).toBeGreaterThanOrEqual(first.flushedAtMs);
        expect((await versions.history(ns)).map((h) => [h.version, h.by])).toEqual([
          [third.version, 'three'],
          [second.version, 'two'],
          [first.version, 'one'],
        ]);
        expect(await versions.history(other)).toEqual([]);
        expect((await versions.all()).has(other)).toBe(false);
      });

      it('writers racing a flush: each write is below the new version or at/above it, and writes after the acknowledgement are above it', async () => {
        const versions = versionsOf(store);
        const ns = freshNamespace();
        let stop = false;
        const written: number[] = [];
        const writers = Array.from({ length: 4 }, async (_, w) => {
          for (let i = 0; !stop; i++) {
            written.push((await store.set(ns, `w${w}-${i % 20}`, input(`${i}`))).version);
            // An in-process store answers in microtasks: yield so the flush and other writers interleave.
            await new Promise((r) => setImmediate(r));
          }
        });
        while (written.length < 20) await new Promise((r) => setImmediate(r));
        const flushed = await versions.bump(ns, 'racer', Math.max(...written) + 1);
        const countAtAck = written.length;
        const after: number[] = [];
        for (let i = 0; i < 10; i++) after.push((await store.set(ns, `after-${i}`, input('x'))).version);
        stop = true;
        await Promise.all(writers);
        expect(countAtAck).toBeGreaterThan(0);
        for (const v of after) expect(v).toBeGreaterThanOrEqual(flushed.version);
      });
    }

    keyListingConformance(() => store);

    const asTiered = capabilities.tiered;
    if (asTiered) {
      it('tiered reads agree with plain reads, name the store as tier and are not degraded while it is healthy', async () => {
        const tiered = asTiered(store);
        const ns = freshNamespace();
        const written = await tiered.set(ns, 'k', input('v'));
        expect(tiered.acceptedLocally(written)).toBe(false);
        const read = await tiered.getTiered(ns, 'k');
        expect(read).toMatchObject({ tier: tiered.kind, status: 'HIT', degraded: false });
        expect(read.entry?.version).toBe(written.version);
        expect(read.entry?.version).toBe((await tiered.get(ns, 'k'))?.version);
        const batch = await tiered.getManyTiered(ns, ['k', 'absent']);
        expect(batch).toMatchObject({ tier: tiered.kind, degraded: false });
        expect([...batch.found.keys()]).toEqual(['k']);
        const removal = await tiered.delete(ns, 'k');
        expect(tiered.acceptedLocally(removal)).toBe(false);
        expect(await tiered.getTiered(ns, 'k')).toEqual({ entry: null, degraded: false });
      });

      it('health reports a durable store with nothing waiting for write-back', () => {
        const health = asTiered(store).health();
        expect(health).toMatchObject({ dirty: 0, durable: true });
        expect([null, 'closed']).toContain(health.breaker);
      });
    }
  });
}
