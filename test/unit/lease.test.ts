import { describe, expect, it } from 'vitest';
import { EdgeCache, type OriginRead, type RevalidationOutcome } from '../../edge/core/edge-cache.ts';
import { Lease } from '../../edge/core/lease.ts';
import { memoryTier } from '../../edge/core/memory-tier.ts';
import type { PurgeConfirmation } from '../../edge/core/purge-source.ts';
import { CacheError } from '../../shared/errors.ts';
import { deferred, originRead } from '../support/fixtures.ts';

const leaseMs = 3_000;

/** An edge core with a fake clock, a fake purge source's confirmations and a fake origin. */
function edge(options: { renewAfterMs?: number; renew?: () => Promise<unknown> } = {}) {
  let nowMs = 1_000_000;
  const clock = { now: () => nowMs, advance: (ms: number) => (nowMs += ms) };
  let confirmation: PurgeConfirmation | null = { atMs: nowMs, tailLive: true };
  const events: string[] = [];
  const outcomes: RevalidationOutcome[] = [];
  const origin = new Map<string, number>();
  let revalidateAnswer: (key: string, version: number) => Promise<OriginRead | 'not-modified' | null> = async (
    key,
    version,
  ) => {
    const current = origin.get(key);
    if (current === undefined) return null;
    return current === version ? 'not-modified' : originRead(`v${current}`, current);
  };
  const lease = new Lease({
    leaseMs,
    renewAfterMs: options.renewAfterMs ?? leaseMs,
    confirmation: () => confirmation,
    renew: async () => {
      events.push('renew');
      await options.renew?.();
      events.push('renewed');
    },
    now: clock.now,
  });
  const tier = memoryTier({ maxBytes: 1 << 24, now: clock.now });
  const cache = new EdgeCache({
    tier,
    maxTtlMs: 300_000,
    now: clock.now,
    lease,
    load: async (_ns, key) => {
      const v = origin.get(key);
      return v === undefined ? null : originRead(`v${v}`, v);
    },
    revalidate: (_ns, key, version) => {
      events.push(`revalidate:${key}`);
      return revalidateAnswer(key, version);
    },
    onRevalidation: (outcome) => outcomes.push(outcome),
  });
  return {
    cache,
    lease,
    clock,
    events,
    outcomes,
    origin,
    confirm: (tailLive = true) => {
      confirmation = { atMs: clock.now(), tailLive };
    },
    answerRevalidations: (f: typeof revalidateAnswer) => {
      revalidateAnswer = f;
    },
  };
}

const textOf = (read: Awaited<ReturnType<EdgeCache['read']>>) =>
  read.kind === 'miss' ? null : new TextDecoder().decode(read.entry.value);

describe('edge lease (fake clock)', () => {
  it('a silent stream: hits are served without asking anyone until the lease ends, then revalidated', async () => {
    const e = edge();
    e.origin.set('k', 1);
    expect((await e.cache.read('ns', 'k')).kind).toBe('fill');
    e.clock.advance(leaseMs - 1);
    expect((await e.cache.read('ns', 'k')).kind).toBe('hit');
    expect(e.events).toEqual([]);
    e.clock.advance(1);
    const read = await e.cache.read('ns', 'k');
    expect(read.kind).toBe('hit');
    expect(e.events).toEqual(['renew', 'renewed', 'revalidate:k']);
    expect(e.outcomes).toEqual(['not_modified']);
    expect(e.lease.lapses).toBe(1);
  });

  it('a heartbeat with a live tail renews the lease; one with tail_live false does not', async () => {
    const e = edge();
    e.origin.set('k', 1);
    await e.cache.read('ns', 'k');
    e.clock.advance(2_000);
    e.confirm(true);
    e.clock.advance(2_000);
    expect((await e.cache.read('ns', 'k')).kind).toBe('hit');
    expect(e.events).toEqual([]);
    e.confirm(false);
    e.clock.advance(1_000);
    await e.cache.read('ns', 'k');
    expect(e.events).toEqual(['renew', 'renewed', 'revalidate:k']);
  });

  it('a lapse with 1,000 hot keys sends one renewal attempt before any per-key revalidation', async () => {
    const gate = deferred<void>();
    const e = edge({ renew: () => gate.promise });
    const keys = Array.from({ length: 1_000 }, (_, i) => `hot${i}`);
    for (const k of keys) e.origin.set(k, 1);
    for (const k of keys) await e.cache.read('ns', k);
    e.clock.advance(leaseMs);
    // Two concurrent readers per key.
    const reads = [...keys, ...keys].map((k) => e.cache.read('ns', k));
    await Promise.resolve();
    expect(e.events).toEqual(['renew']);
    gate.resolve();
    const results = await Promise.all(reads);
    expect(e.events.slice(0, 2)).toEqual(['renew', 'renewed']);
    expect(e.events.filter((x) => x === 'renew')).toHaveLength(1);
    // Coalesced per key: one revalidation for the two readers of each key.
    expect(e.events.slice(2).sort()).toEqual(keys.map((k) => `revalidate:${k}`).sort());
    expect(results.every((r) => r.kind === 'hit')).toBe(true);
  });

  it('a renewal that restores the lease serves the hit without revalidating', async () => {
    const e = edge({
      renew: async () => {
        e.confirm(true);
      },
    });
    e.origin.set('k', 1);
    await e.cache.read('ns', 'k');
    e.clock.advance(leaseMs + 500);
    expect((await e.cache.read('ns', 'k')).kind).toBe('hit');
    expect(e.events).toEqual(['renew', 'renewed']);
  });

  it('after a failed renewal, reads within the retry interval revalidate without another renewal', async () => {
    const e = edge();
    e.origin.set('k', 1);
    await e.cache.read('ns', 'k');
    e.clock.advance(leaseMs);
    await e.cache.read('ns', 'k');
    e.clock.advance(100);
    await e.cache.read('ns', 'k');
    expect(e.events).toEqual(['renew', 'renewed', 'revalidate:k', 'revalidate:k']);
    e.clock.advance(leaseMs / 3);
    await e.cache.read('ns', 'k');
    expect(e.events.filter((x) => x === 'renew')).toHaveLength(2);
  });

  it('revalidation: 304 keeps the copy, a newer version replaces it, a miss drops it', async () => {
    const e = edge();
    e.origin.set('a', 1);
    e.origin.set('b', 1);
    await e.cache.read('ns', 'a');
    await e.cache.read('ns', 'b');
    e.clock.advance(leaseMs);
    e.origin.set('a', 2);
    e.origin.delete('b');
    expect(textOf(await e.cache.read('ns', 'a'))).toBe('v2');
    expect(await e.cache.read('ns', 'b')).toEqual({ kind: 'miss' });
    expect(e.outcomes).toEqual(['modified', 'gone']);
    e.confirm(true);
    // With the lease back, the replaced copy is a plain hit.
    const again = await e.cache.read('ns', 'a');
    expect(again.kind).toBe('hit');
    expect(textOf(again)).toBe('v2');
  });

  it('an unreachable origin during a lapse answers CACHE_005, never the old copy', async () => {
    const e = edge();
    e.origin.set('k', 1);
    await e.cache.read('ns', 'k');
    e.clock.advance(leaseMs);
    e.answerRevalidations(async () => {
      throw new CacheError('CACHE_005', 'Origin unreachable');
    });
    await expect(e.cache.read('ns', 'k')).rejects.toMatchObject({ code: 'CACHE_005' });
    expect(e.outcomes).toEqual(['error']);
  });

  it('a poll source renews before serving once the view is older than the poll interval, not the lease', async () => {
    const e = edge({
      renewAfterMs: 1_000,
      renew: async () => {
        e.confirm(true);
      },
    });
    e.origin.set('k', 1);
    await e.cache.read('ns', 'k');
    e.clock.advance(999);
    await e.cache.read('ns', 'k');
    expect(e.events).toEqual([]);
    e.clock.advance(1);
    await e.cache.read('ns', 'k');
    expect(e.events).toEqual(['renew', 'renewed']);
  });
});
