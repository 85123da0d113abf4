import { describe, expect, it } from 'vitest';
import { EdgeCache } from '../../edge/core/edge-cache.ts';
import { Lease } from '../../edge/core/lease.ts';
import { memoryTier } from '../../edge/core/memory-tier.ts';
import { PurgeFloors } from '../../edge/core/purge-floors.ts';
import type { EdgeEntry, SharedEdgeTier } from '../../edge/core/tier.ts';
import { deferred, originRead } from '../support/fixtures.ts';

const purge = (over: { keys?: string[]; tags?: string[]; prefix?: string | null; version: number }) => ({
  type: 'purge' as const,
  position: 'p',
  namespace: 'ns',
  keys: over.keys ?? [],
  tags: over.tags ?? [],
  prefix: over.prefix ?? null,
  version: over.version,
  action: 'delete' as const,
  ts: 0,
});

const entry = (key: string, version: number): EdgeEntry => ({
  namespace: 'ns',
  key,
  value: new TextEncoder().encode(`v${version}`),
  contentType: 'text/plain',
  version,
  createdAtMs: 0,
  expiresAtMs: Number.MAX_SAFE_INTEGER,
  tags: [],
  filledFrom: 'redis',
});

/** A fake shared tier (a map, no floors of its own) that records what the edge cache asks of it. */
function fakeShared() {
  const held = new Map<string, EdgeEntry>();
  const calls: string[] = [];
  let gate: Promise<void> | undefined;
  const tier: SharedEdgeTier & { held: typeof held; calls: typeof calls; hold(p: Promise<void>): void } = {
    name: 'fake',
    held,
    calls,
    hold: (p) => {
      gate = p;
    },
    size: 0,
    bytes: 0,
    async get(_ns, key) {
      calls.push(`get ${key}`);
      if (gate) await gate;
      return held.get(key);
    },
    async set(e, filledAtMs) {
      calls.push(`set ${e.key}@${e.version} filled ${filledAtMs}`);
      held.set(e.key, e);
      return true;
    },
    async delete(_ns, key) {
      calls.push(`delete ${key}`);
    },
    async purge(message) {
      calls.push(`purge ${message.version}`);
      return 0;
    },
    async clear() {
      calls.push('clear');
    },
  };
  return tier;
}

describe('edge cache with a shared second tier', () => {
  it('a memory miss is served from the shared tier (flagged), promoted to memory, with no origin load', async () => {
    const shared = fakeShared();
    shared.held.set('k', entry('k', 7));
    let loads = 0;
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20 }),
      shared,
      maxTtlMs: 5_000,
      load: async () => {
        loads++;
        return null;
      },
    });
    const first = await cache.read('ns', 'k');
    expect(first).toMatchObject({ kind: 'hit', from: 'fake', entry: { version: 7 } });
    const second = await cache.read('ns', 'k');
    expect(second.kind === 'hit' && second.from).toBeUndefined();
    expect(loads).toBe(0);
    // The memory hit asked nothing of the shared tier.
    expect(shared.calls).toEqual(['get k']);
  });

  it('a fill goes to the shared tier stamped with the time its origin read was sent; purges, resets and deletes are forwarded', async () => {
    let now = 1_000;
    const shared = fakeShared();
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20, now: () => now }),
      shared,
      maxTtlMs: 5_000,
      now: () => now,
      load: async () => {
        now += 50; // the origin takes 50 ms
        return originRead('v', 3);
      },
    });
    expect((await cache.read('ns', 'k')).kind).toBe('fill');
    expect(shared.calls).toEqual(['get k', 'set k@3 filled 1000']);
    cache.apply(purge({ tags: ['t'], version: 9 }));
    cache.apply({ type: 'reset', position: 'p', reason: 'gap' });
    cache.forget('ns', 'k', 12);
    cache.distrustShared();
    expect(shared.calls.slice(2)).toEqual(['purge 9', 'clear', 'purge 12', 'clear']);
  });

  it('is not consulted while the lease is lapsed: the read goes to the origin', async () => {
    const shared = fakeShared();
    shared.held.set('k', entry('k', 7));
    const lease = new Lease({ leaseMs: 3_000, renewAfterMs: 1_000, confirmation: () => null, renew: async () => {} });
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20 }),
      shared,
      lease,
      revalidate: async () => 'not-modified',
      maxTtlMs: 5_000,
      load: async () => originRead('from origin', 8),
    });
    expect(await cache.read('ns', 'k')).toMatchObject({ kind: 'fill', entry: { version: 8 } });
    expect(shared.calls.filter((c) => c.startsWith('get'))).toEqual([]);
  });

  it('a purge applied while the shared lookup is in flight refuses the copy it returns', async () => {
    const shared = fakeShared();
    shared.held.set('k', entry('k', 7));
    const gate = deferred<void>();
    shared.hold(gate.promise);
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20 }),
      shared,
      maxTtlMs: 5_000,
      load: async () => originRead('fresh', 9),
    });
    const read = cache.read('ns', 'k');
    await Promise.resolve();
    cache.apply(purge({ keys: ['k'], version: 9 }));
    gate.resolve();
    expect(await read).toMatchObject({ kind: 'fill', entry: { version: 9 } });
  });
});

describe('purge floors', () => {
  it('refuse versions below a purge of the key, a tag or a covering prefix of the same namespace, and nothing else', () => {
    const floors = new PurgeFloors();
    floors.record(purge({ keys: ['a'], version: 10 }));
    floors.record(purge({ tags: ['red'], version: 20 }));
    floors.record(purge({ prefix: 'user:', version: 30 }));
    expect(floors.admits('ns', 'a', 9, [])).toBe(false);
    expect(floors.admits('ns', 'a', 10, [])).toBe(true);
    expect(floors.admits('ns', 'b', 19, ['red'])).toBe(false);
    expect(floors.admits('ns', 'b', 19, ['blue'])).toBe(true);
    expect(floors.admits('ns', 'user:1', 29, [])).toBe(false);
    expect(floors.admits('ns', 'user:1', 30, [])).toBe(true);
    expect(floors.admits('other', 'user:1', 1, ['red'])).toBe(true);
  });

  it('a namespace flush refuses every older version in that namespace only (copies other isolates stored included)', () => {
    const floors = new PurgeFloors();
    floors.record({ ...purge({ version: 50 }), action: 'flush' });
    expect(floors.admits('ns', 'any', 49, [])).toBe(false);
    expect(floors.admits('ns', 'any', 50, [])).toBe(true);
    expect(floors.admits('other', 'any', 1, [])).toBe(true);
  });

  it('a floor forgotten to stay within bounds raises the global floor (refusing more, never less)', () => {
    const floors = new PurgeFloors({ maxKeys: 2 });
    floors.record(purge({ keys: ['a'], version: 10 }));
    floors.record(purge({ keys: ['b'], version: 20 }));
    floors.record(purge({ keys: ['c'], version: 30 }));
    // `a` was forgotten: its floor now holds for every key.
    expect(floors.admits('ns', 'a', 9, [])).toBe(false);
    expect(floors.admits('ns', 'z', 9, [])).toBe(false);
    expect(floors.admits('ns', 'z', 10, [])).toBe(true);
    expect(floors.admits('ns', 'c', 29, [])).toBe(false);
  });
});
