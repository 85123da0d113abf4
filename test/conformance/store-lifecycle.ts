import { expect, it } from 'vitest';
import { type EntryInput, LeaseLostError, type Store } from '../../origin/store/store.ts';
import { freshness } from '../../shared/lifecycle.ts';
import { eventually } from '../support/wait.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const input = (value: string, over: Partial<EntryInput> = {}): EntryInput => ({
  value: bytes(value),
  contentType: 'text/plain',
  ttlMs: 60_000,
  tags: [],
  ...over,
});

/**
 * The entry-lifecycle part of the `Store` conformance suite (grace windows
 * and soft purge, RFC 5861 and Fastly's soft purge), registered inside
 * `storeConformance`'s `describe`. Real time on real servers: windows are a
 * few hundred milliseconds and every wait polls with a deadline.
 */
export function storeLifecycleConformance(store: () => Store, freshNamespace: () => string): void {
  it('an entry is fresh before its TTL, stale within its grace window, and gone after', async () => {
    const ns = freshNamespace();
    const grace = { staleWhileRevalidateMs: 400, staleIfErrorMs: 900 };
    const written = await store().set(ns, 'g', input('v', { ttlMs: 600, grace }));
    expect(written).toMatchObject(grace);
    const first = await store().get(ns, 'g');
    expect(first).toMatchObject({ version: written.version, ...grace });
    // Every read while the entry is still returned agrees with the lifecycle at the time of the read.
    const seen = new Set<string>();
    const wrong: string[] = [];
    let goneAtMs = 0;
    await eventually(
      'the entry to be gone after its grace',
      async () => {
        const before = Date.now();
        const read = await store().get(ns, 'g');
        if (read === null) {
          goneAtMs = Date.now();
          return true;
        }
        if (read.version !== written.version || read.expiresAtMs !== written.expiresAtMs) wrong.push('changed');
        seen.add(freshness(read, before));
        return false;
      },
      10_000,
      20,
    );
    expect(wrong).toEqual([]);
    expect(goneAtMs).toBeGreaterThanOrEqual(written.expiresAtMs + grace.staleIfErrorMs - 50);
    expect(seen).toContain('stale');
    expect(seen).toContain('error-only');
  });

  it('a swap counts an entry in its grace windows as absent, as Redis counts a key past its TTL', async () => {
    const ns = freshNamespace();
    const grace = { staleWhileRevalidateMs: 60_000, staleIfErrorMs: 0 };
    const stale = await store().set(ns, '{s}g', input('old', { ttlMs: 200, grace }));
    await eventually('the entry to go stale', async () => {
      const read = await store().get(ns, '{s}g');
      return read !== null && freshness(read, Date.now()) === 'stale';
    });
    const swap = store().swap!.bind(store());
    const set = { kind: 'set', input: input('new') } as const;
    expect(await swap(ns, [{ key: '{s}g', expectedVersion: stale.version, action: set }])).toEqual({
      kind: 'conflict',
    });
    const outcome = await swap(ns, [{ key: '{s}g', expectedVersion: 0, action: set }]);
    expect(outcome.kind).toBe('swapped');
    expect(new TextDecoder().decode((await store().get(ns, '{s}g'))!.value)).toBe('new');
  });

  it('a batch write keeps each entry’s grace windows, and a batch read returns entries within grace', async () => {
    const ns = freshNamespace();
    const grace = { staleWhileRevalidateMs: 60_000, staleIfErrorMs: 120_000 };
    const entries = new Map([
      ['a', input('a', { ttlMs: 200, grace })],
      ['b', input('b', { ttlMs: 200 })],
    ]);
    await store().setMany(ns, entries);
    await eventually('b to expire', async () => (await store().get(ns, 'b')) === null);
    const found = await store().getMany(ns, ['a', 'b']);
    expect([...found.keys()]).toEqual(['a']);
    expect(found.get('a')).toMatchObject(grace);
    expect(freshness(found.get('a')!, Date.now())).toBe('stale');
  });

  it('a soft purge ends the fresh lifetime under a higher version, keeps grace and tags, and removes entries without grace', async () => {
    const ns = freshNamespace();
    const grace = { staleWhileRevalidateMs: 60_000, staleIfErrorMs: 0 };
    const a = await store().set(ns, 'a', input('a', { tags: ['t'], grace }));
    await store().set(ns, 'b', input('b', { tags: ['t'] }));
    const before = Date.now();
    const purge = await store().purge(ns, { keys: [], tags: ['t'], prefix: null, soft: true });
    expect(purge.removed).toBe(2);
    const stale = await store().get(ns, 'a');
    expect(stale).not.toBeNull();
    expect(new TextDecoder().decode(stale!.value)).toBe('a');
    expect(stale!.version).toBeGreaterThan(a.version);
    expect(purge.version).toBeGreaterThanOrEqual(stale!.version);
    expect(stale!.softPurgedAtMs).toBeGreaterThanOrEqual(before - 50);
    expect(stale!.expiresAtMs).toBeLessThanOrEqual(Date.now());
    expect(freshness(stale!, Date.now())).toBe('stale');
    expect(stale!.staleWhileRevalidateMs).toBe(grace.staleWhileRevalidateMs);
    expect(await store().get(ns, 'b')).toBeNull();
    // Still a member of its tag: a hard purge of the tag finds it.
    expect((await store().purge(ns, { keys: [], tags: ['t'], prefix: null })).removed).toBe(1);
    expect(await store().get(ns, 'a')).toBeNull();
  });

  it('a soft purge by key and by prefix marks only the selected entries, and a rewrite is fresh again', async () => {
    const ns = freshNamespace();
    const grace = { staleWhileRevalidateMs: 60_000, staleIfErrorMs: 60_000 };
    for (const key of ['p:1', 'p:2', 'q:1', 'k']) await store().set(ns, key, input(key, { grace }));
    expect((await store().purge(ns, { keys: ['k'], tags: [], prefix: 'p:', soft: true })).removed).toBe(3);
    const now = Date.now();
    for (const key of ['p:1', 'p:2', 'k']) expect(freshness((await store().get(ns, key))!, now)).toBe('stale');
    expect(freshness((await store().get(ns, 'q:1'))!, now)).toBe('fresh');
    expect((await store().get(ns, 'q:1'))!.softPurgedAtMs).toBeUndefined();
    const rewritten = await store().set(ns, 'k', input('k2', { grace }));
    const read = (await store().get(ns, 'k'))!;
    expect(read.version).toBe(rewritten.version);
    expect(read.softPurgedAtMs).toBeUndefined();
    expect(freshness(read, Date.now())).toBe('fresh');
  });
}

/** The refresh-lease part of the `Store` conformance suite, for stores that grant leases. */
export function storeLeaseConformance(store: () => Store, freshNamespace: () => string): void {
  it('one refresh lease per key at a time; its write completes the refresh, records Δ, and spends the lease', async () => {
    const s = store();
    if (!s.grantLease) throw new Error('store grants no leases');
    const ns = freshNamespace();
    const lease = await s.grantLease(ns, 'k', 'lease-1', 5_000, 0);
    expect(lease).toEqual({ id: 'lease-1', version: 0 });
    expect(await s.grantLease(ns, 'k', 'lease-2', 5_000, 0)).toBeNull();
    const written = await s.set(ns, 'k', input('v', { leaseId: 'lease-1' }));
    const read = (await s.get(ns, 'k'))!;
    expect(read.version).toBe(written.version);
    expect(read.refreshMs).toBeGreaterThanOrEqual(0);
    await expect(s.set(ns, 'k', input('again', { leaseId: 'lease-1' }))).rejects.toBeInstanceOf(LeaseLostError);
  });

  it('a lease write after a newer write, or with another key’s lease, is refused and writes nothing', async () => {
    const s = store();
    const ns = freshNamespace();
    const old = await s.set(ns, 'k', input('old'));
    expect(await s.grantLease!(ns, 'k', 'mine', 5_000, old.version)).toEqual({ id: 'mine', version: old.version });
    expect(await s.grantLease!(ns, 'other', 'theirs', 5_000, 0)).not.toBeNull();
    await expect(s.set(ns, 'k', input('wrong key', { leaseId: 'theirs' }))).rejects.toBeInstanceOf(LeaseLostError);
    await s.set(ns, 'k', input('newer'));
    await expect(s.set(ns, 'k', input('stale set', { leaseId: 'mine' }))).rejects.toBeInstanceOf(LeaseLostError);
    expect(new TextDecoder().decode((await s.get(ns, 'k'))!.value)).toBe('newer');
  });

  it('no lease is granted to a caller that read a version no longer there', async () => {
    const s = store();
    const ns = freshNamespace();
    await s.set(ns, 'k', input('written after the caller missed'));
    expect(await s.grantLease!(ns, 'k', 'late', 5_000, 0)).toBeNull();
  });

  it('an expired lease can be taken by the next caller, and the old holder’s write is refused', async () => {
    const s = store();
    const ns = freshNamespace();
    expect(await s.grantLease!(ns, 'k', 'first', 100, 0)).not.toBeNull();
    const second = await eventually('the first lease to expire', () => s.grantLease!(ns, 'k', 'second', 5_000, 0));
    expect(second.id).toBe('second');
    await expect(s.set(ns, 'k', input('late', { leaseId: 'first' }))).rejects.toBeInstanceOf(LeaseLostError);
    await s.set(ns, 'k', input('refreshed', { leaseId: 'second' }));
  });

  it('a soft purge ends an outstanding lease; the soft-purged entry then gives one lease, whose write makes it fresh', async () => {
    const s = store();
    const ns = freshNamespace();
    const grace = { staleWhileRevalidateMs: 60_000, staleIfErrorMs: 0 };
    const written = await s.set(ns, 'k', input('v1', { grace }));
    expect(await s.grantLease!(ns, 'k', 'before', 5_000, written.version)).not.toBeNull();
    await s.purge(ns, { keys: ['k'], tags: [], prefix: null, soft: true });
    const stale = (await s.get(ns, 'k'))!;
    expect(stale.softPurgedAtMs).toBeDefined();
    await expect(s.set(ns, 'k', input('late', { leaseId: 'before' }))).rejects.toBeInstanceOf(LeaseLostError);
    expect(await s.grantLease!(ns, 'k', 'refresh', 5_000, stale.version)).toEqual({
      id: 'refresh',
      version: stale.version,
    });
    expect(await s.grantLease!(ns, 'k', 'another', 5_000, stale.version)).toBeNull();
    const refreshed = await s.set(ns, 'k', input('v2', { grace, leaseId: 'refresh' }));
    const read = (await s.get(ns, 'k'))!;
    expect([read.version, read.softPurgedAtMs, freshness(read, Date.now())]).toEqual([
      refreshed.version,
      undefined,
      'fresh',
    ]);
    // A soft purge of a missing key ends the lease a miss handed out, too.
    expect(await s.grantLease!(ns, 'missing', 'miss', 5_000, 0)).not.toBeNull();
    await s.purge(ns, { keys: ['missing'], tags: [], prefix: null, soft: true });
    await expect(s.set(ns, 'missing', input('pre-purge', { leaseId: 'miss' }))).rejects.toBeInstanceOf(LeaseLostError);
    expect(await s.grantLease!(ns, 'missing', 'next', 5_000, 0)).not.toBeNull();
  });
}
