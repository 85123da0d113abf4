import { describe, expect, it } from 'vitest';
import { EdgeCache } from '../../edge/core/edge-cache.ts';
import { memoryTier } from '../../edge/core/memory-tier.ts';
import { deferred, originRead } from '../support/fixtures.ts';

const purge = (keys: string[], prefix: string | null = null) => ({
  type: 'purge' as const,
  position: 'p',
  namespace: 'ns',
  keys,
  tags: [],
  prefix,
  version: 5,
  action: 'update' as const,
  ts: 0,
});

function edgeWith(negativeTtlMs: number, answer: () => ReturnType<typeof originRead> | null) {
  let now = 0;
  let loads = 0;
  const cache = new EdgeCache({
    tier: memoryTier({ maxBytes: 1 << 20, now: () => now }),
    maxTtlMs: 60_000,
    now: () => now,
    negativeTtlMs,
    load: async () => {
      loads++;
      return answer();
    },
  });
  return { cache, loads: () => loads, tick: (ms: number) => (now += ms) };
}

describe('negative caching at the edge', () => {
  it('a burst of reads of an absent key costs one origin request while the miss is remembered, then one more', async () => {
    const edge = edgeWith(1_000, () => null);
    for (let i = 0; i < 100; i++) expect((await edge.cache.read('ns', 'absent')).kind).toBe('miss');
    expect(edge.loads()).toBe(1);
    edge.tick(1_000);
    await edge.cache.read('ns', 'absent');
    expect(edge.loads()).toBe(2);
  });

  it('is off by default: every miss asks the origin', async () => {
    const edge = edgeWith(0, () => null);
    await edge.cache.read('ns', 'absent');
    await edge.cache.read('ns', 'absent');
    expect(edge.loads()).toBe(2);
  });

  it('a purge of the key (a write anywhere), of its prefix, or a reset forgets the miss at once', async () => {
    let value: ReturnType<typeof originRead> | null = null;
    const edge = edgeWith(60_000, () => value);
    const messages = [
      ['k1', purge(['k1'])],
      ['k2', purge([], 'k')],
      ['k3', { type: 'reset' as const, position: 'p', reason: 'test' }],
    ] as const;
    for (const [key, message] of messages) {
      value = null;
      expect((await edge.cache.read('ns', key)).kind).toBe('miss');
      value = originRead('written', 10);
      expect((await edge.cache.read('ns', key)).kind).toBe('miss'); // remembered
      edge.cache.apply(message);
      expect((await edge.cache.read('ns', key)).kind).toBe('fill');
    }
  });

  it('a miss whose load overlapped a purge is not remembered (it may predate a write)', async () => {
    const gate = deferred<null>();
    let loads = 0;
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20 }),
      maxTtlMs: 60_000,
      negativeTtlMs: 60_000,
      load: async () => {
        loads++;
        return loads === 1 ? await gate.promise : originRead('written', 10);
      },
    });
    const first = cache.read('ns', 'k');
    cache.apply(purge(['k']));
    gate.resolve(null);
    expect((await first).kind).toBe('miss');
    expect((await cache.read('ns', 'k')).kind).toBe('fill');
  });

  it('a reader that refreshes (Prefer: lease) always reaches the origin, for its lease', async () => {
    const edge = edgeWith(60_000, () => null);
    await edge.cache.read('ns', 'absent');
    await edge.cache.read('ns', 'absent', undefined, { lease: true, waitSeconds: 0 });
    expect(edge.loads()).toBe(2);
  });
});
