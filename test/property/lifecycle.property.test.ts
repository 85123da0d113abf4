import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EdgeCache } from '../../edge/core/edge-cache.ts';
import { memoryTier } from '../../edge/core/memory-tier.ts';
import { RedisBreaker } from '../../origin/breaker.ts';
import { CacheService, type CacheServiceOptions } from '../../origin/cache-service.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { LocalTier } from '../../origin/store/local-tier.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import { resilientStore } from '../../origin/store/resilient.ts';
import { CacheError } from '../../shared/errors.ts';
import { freshness } from '../../shared/lifecycle.ts';
import { originRead } from '../support/fixtures.ts';

/** fast-check prints the seed and the shrunk counterexample on failure. */
const runs = { numRuns: 200 };
const windowMs = fc.integer({ min: 0, max: 5_000 });
const text = (s: string) => new TextEncoder().encode(s);

/** The origin's service over the embedded store, on the fake clock `now`; `extra` overrides any option. */
const memoryService = (now: () => number, extra: Partial<CacheServiceOptions> = {}) =>
  new CacheService({
    store: passThroughStore(memoryStore({ maxBytes: 1 << 20, now })),
    bus: new InProcessPurgeBus({ retainedEntries: 64 }),
    defaultTtlSeconds: 2,
    maxValueBytes: 1024,
    now,
    ...extra,
  });

describe('entry lifecycle (fake clock)', () => {
  it('a stored entry is fresh before its TTL, stale within grace, and gone after, on the embedded store', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5_000 }),
        windowMs,
        windowMs,
        fc.integer({ min: 0, max: 12_000 }),
        async (ttlMs, swr, sie, elapsed) => {
          let now = 1_000_000;
          const store = memoryStore({ maxBytes: 1 << 20, now: () => now });
          const grace = { staleWhileRevalidateMs: swr, staleIfErrorMs: sie };
          await store.set('ns', 'k', { value: text('v'), contentType: 'text/plain', ttlMs, tags: [], grace });
          now += elapsed;
          const read = await store.get('ns', 'k');
          const expected =
            elapsed < ttlMs ? 'fresh' : elapsed < ttlMs + swr ? 'stale' : elapsed < ttlMs + sie ? 'error-only' : 'gone';
          if (expected === 'gone') expect(read).toBeNull();
          else expect(freshness(read!, now)).toBe(expected);
        },
      ),
      runs,
    );
  });

  it('a soft-purged entry is never served as fresh until it is written again, and no answer outlives its grace', async () => {
    type Op = { kind: 'write'; swr: number } | { kind: 'soft' } | { kind: 'hard' } | { kind: 'tick'; ms: number };
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), swr: windowMs }),
      fc.record({ kind: fc.constant('soft' as const) }),
      fc.record({ kind: fc.constant('hard' as const) }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3_000 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops: Op[]) => {
        let now = 1_000_000;
        const service = memoryService(() => now);
        // Model: since the last write, was there a soft purge; and when does the entry stop being servable.
        let softSinceWrite = false;
        let servableUntil = Number.NEGATIVE_INFINITY;
        let expiresAt = Number.NEGATIVE_INFINITY;
        let swrMs = 0;
        for (const step of ops) {
          if (step.kind === 'write') {
            const grace = { staleWhileRevalidateMs: step.swr, staleIfErrorMs: 0 };
            await service.set('ns', 'k', { value: text('v'), contentType: 'text/plain', grace });
            softSinceWrite = false;
            expiresAt = now + 2_000;
            swrMs = step.swr;
            servableUntil = expiresAt + swrMs;
          } else if (step.kind === 'soft') {
            await service.purge('ns', { keys: ['k'], tags: [], prefix: null, soft: true });
            if (now < servableUntil) softSinceWrite = true;
            expiresAt = Math.min(expiresAt, now);
            servableUntil = Math.min(servableUntil, expiresAt + swrMs);
          } else if (step.kind === 'hard') {
            await service.purge('ns', { keys: ['k'], tags: [], prefix: null });
            servableUntil = Number.NEGATIVE_INFINITY;
          } else now += step.ms;
          const read = await service.get('ns', 'k');
          if (now >= servableUntil) expect(read.entry).toBeNull();
          else if (read.entry) {
            if (softSinceWrite) {
              expect(read).toMatchObject({ status: 'STALE', staleReason: 'soft-purge' });
            } else if (now < expiresAt) expect(read.status).toBe('HIT');
            else expect(read).toMatchObject({ status: 'STALE', staleReason: 'revalidating' });
          } else expect.fail(`servable until ${servableUntil}, now ${now}, but read missed`);
        }
      }),
      runs,
    );
  });

  it('an edge serves its copy on an origin failure exactly while the writer’s stale-if-error window covers it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5_000 }),
        windowMs,
        windowMs,
        fc.integer({ min: 0, max: 12_000 }),
        fc.constantFrom(503, 504, 500),
        async (ttlMs, swr, sie, elapsed, status) => {
          let now = 0;
          let failing = false;
          const read = originRead('v', 7, {
            createdAtMs: 0,
            expiresAtMs: ttlMs,
            staleWhileRevalidateMs: swr,
            staleIfErrorMs: sie,
          });
          const cache = new EdgeCache({
            tier: memoryTier({ maxBytes: 1 << 20, now: () => now }),
            maxTtlMs: 60_000,
            now: () => now,
            load: async () => {
              if (failing)
                throw new CacheError('CACHE_005', 'Origin unreachable', { status: status === 504 ? 504 : 503 });
              return read;
            },
          });
          expect((await cache.read('ns', 'k')).kind).toBe('fill');
          now = elapsed;
          failing = true;
          const answer = await cache.read('ns', 'k').catch((error: unknown) => error);
          const state = freshness(read, now);
          if (state === 'fresh' || state === 'stale') expect(answer).toMatchObject({ kind: 'hit' });
          else if (sie > 0 && now < ttlMs + sie) expect(answer).toMatchObject({ kind: 'stale-if-error' });
          else expect(answer).toBeInstanceOf(CacheError);
        },
      ),
      runs,
    );
  });

  it('an edge never answers stale-if-error for a refusal or a bad request from the origin', async () => {
    let now = 0;
    let refuse = false;
    const cache = new EdgeCache({
      tier: memoryTier({ maxBytes: 1 << 20, now: () => now }),
      maxTtlMs: 60_000,
      now: () => now,
      load: async () => {
        if (refuse) throw new CacheError('AUTH_002');
        return originRead('v', 1, { expiresAtMs: 1_000, staleIfErrorMs: 60_000 });
      },
    });
    await cache.read('ns', 'k');
    now = 2_000;
    refuse = true;
    await expect(cache.read('ns', 'k')).rejects.toMatchObject({ code: 'AUTH_002' });
  });
});

/**
 * Refresh leases and strong reads through the origin's `CacheService`, under
 * random interleavings on a fake clock (memcache leases, NSDI 2013). The model
 * of a key's lease: the last one granted is outstanding until it lapses
 * (`leaseMs`) or any write or purge of the key ends it.
 */
describe('refresh leases and strong reads (fake clock)', () => {
  const leaseMs = 1_000;
  type Step =
    | { kind: 'read'; wait: boolean }
    | { kind: 'write'; ttlMs: number; swr: number }
    | { kind: 'lease-write'; pick: number }
    | { kind: 'soft' | 'hard' }
    | { kind: 'tick'; ms: number };
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('read' as const), wait: fc.boolean() }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('write' as const),
        ttlMs: fc.integer({ min: 1, max: 3_000 }),
        swr: windowMs,
      }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('lease-write' as const), pick: fc.nat(7) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('soft' as const, 'hard' as const) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 1_500 }) }) },
  );

  it('at most one lease per key is outstanding, and a lease write succeeds exactly while its lease holds', async () => {
    const seen = { completed: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { maxLength: 40 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (steps, rand) => {
          let now = 1_000_000;
          const service = memoryService(() => now, {
            leaseMs,
            // XFetch may hand a fresh entry's lease early; it is still one lease at a time.
            random: () => rand,
            waitPollMs: 1,
          });
          // Model: the outstanding lease (token and when it lapses), and every token granted.
          let outstanding: { token: string; until: number } | null = null;
          const granted: string[] = [];
          const live = () => (outstanding && now < outstanding.until ? outstanding : null);
          for (const s of steps) {
            if (s.kind === 'read') {
              // A wait of 0 s: one look, as `Prefer: wait` ends at once on a fake clock that stands still.
              const read = await service.get('ns', 'k', { lease: true, ...(s.wait ? { waitSeconds: 0 } : {}) });
              if (read.lease !== undefined) {
                expect(live(), 'a second lease while one is outstanding').toBeNull();
                outstanding = { token: read.lease, until: now + leaseMs };
                granted.push(read.lease);
              }
            } else if (s.kind === 'write') {
              const grace = { staleWhileRevalidateMs: s.swr, staleIfErrorMs: 0 };
              await service.set('ns', 'k', { value: text('w'), contentType: 'text/plain', ttlSeconds: 1, grace });
              outstanding = null;
            } else if (s.kind === 'lease-write') {
              const token = granted[s.pick % Math.max(1, granted.length)];
              if (token === undefined) continue;
              const holds = live()?.token === token;
              const write = service.set('ns', 'k', { value: text(token), contentType: 'text/plain', leaseId: token });
              if (holds) {
                await write;
                seen.completed += 1;
                outstanding = null;
                expect(new TextDecoder().decode((await service.get('ns', 'k')).entry!.value)).toBe(token);
              } else {
                await expect(write).rejects.toMatchObject({ code: 'CACHE_006' });
                seen.refused += 1;
              }
            } else if (s.kind === 'soft' || s.kind === 'hard') {
              await service.purge('ns', { keys: ['k'], tags: [], prefix: null, soft: s.kind === 'soft' });
              outstanding = null;
            } else if (s.kind === 'tick') now += s.ms;
          }
        },
      ),
      runs,
    );
    // Both outcomes of a lease write were exercised.
    expect(seen.completed).toBeGreaterThan(20);
    expect(seen.refused).toBeGreaterThan(20);
  });

  it('a lease write after a newer write is refused and leaves the newer value', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.integer({ min: 0, max: 999 }), async (entryFirst, elapsed) => {
        let now = 1_000_000;
        const service = memoryService(() => now, {
          defaultTtlSeconds: 1,
          leaseMs,
        });
        const grace = { staleWhileRevalidateMs: 5_000, staleIfErrorMs: 0 };
        if (entryFirst) {
          await service.set('ns', 'k', { value: text('old'), contentType: 'text/plain', grace });
          now += 1_000; // stale within grace: the read is offered the lease
        }
        const { lease } = await service.get('ns', 'k', { lease: true });
        expect(lease).toBeDefined();
        now += elapsed;
        const newer = await service.set('ns', 'k', { value: text('newer'), contentType: 'text/plain' });
        await expect(
          service.set('ns', 'k', { value: text('stale set'), contentType: 'text/plain', leaseId: lease }),
        ).rejects.toMatchObject({ code: 'CACHE_006' });
        const read = await service.get('ns', 'k');
        expect(read.entry?.version).toBe(newer.version);
        expect(new TextDecoder().decode(read.entry!.value)).toBe('newer');
      }),
      runs,
    );
  });

  it('a strong read never answers a value older than the store’s, never stale, and never from the fallback tier', async () => {
    type Op =
      | { kind: 'strong' | 'eventual' }
      | { kind: 'write'; ttlMs: number; swr: number }
      | { kind: 'soft' | 'outage' | 'up' }
      | { kind: 'tick'; ms: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constantFrom('strong' as const, 'eventual' as const) }) },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('write' as const),
          ttlMs: fc.integer({ min: 1, max: 3_000 }),
          swr: windowMs,
        }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('soft' as const, 'outage' as const, 'up' as const) }) },
      {
        weight: 2,
        arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 2_000 }) }),
      },
    );
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        let now = 1_000_000;
        let down = false;
        const memory = memoryStore({ maxBytes: 1 << 20, now: () => now });
        // The backing store: every call fails while `down`, as Redis does in an outage.
        const inner = new Proxy(memory, {
          get(target, name, receiver) {
            const value = Reflect.get(target, name, receiver);
            if (typeof value !== 'function' || name === 'kind') return value;
            return (...args: unknown[]) => {
              if (down) return Promise.reject(new Error('store down'));
              return value.apply(target, args);
            };
          },
        });
        const store = resilientStore({
          inner,
          // Changes accepted during an outage stay local: `store` is the truth a strong read is checked against.
          writeBack: { setIfNewer: async () => false, deleteIfOlder: async () => false },
          breaker: new RedisBreaker({ readAttempts: 1, minRequests: 1e9, callTimeoutMs: 1e8 }),
          local: new LocalTier({ maxBytes: 1 << 20, maxDirtyBytes: 1 << 20, now: () => now }),
          recoveryIntervalMs: 0,
          now: () => now,
        });
        const service = new CacheService({
          store,
          bus: new InProcessPurgeBus({ retainedEntries: 64 }),
          defaultTtlSeconds: 2,
          maxValueBytes: 1024,
          now: () => now,
        });
        for (const step of ops) {
          if (step.kind === 'strong') {
            let read: Awaited<ReturnType<CacheService['get']>>;
            try {
              read = await service.get('ns', 'k', { strong: true });
            } catch (error) {
              // Down, or up again with changes only the fallback tier holds: refusing is the safe answer.
              if (error instanceof CacheError && error.code === 'CACHE_005') continue;
              throw error;
            }
            expect(down, 'a strong read answered from the fallback tier').toBe(false);
            answered += 1;
            const truth = await memory.get('ns', 'k');
            const current = truth && freshness(truth, now) === 'fresh' ? truth : null;
            if (!read.entry) expect(current).toBeNull();
            else {
              expect('status' in read && read.status).toBe('HIT');
              expect(read.entry.version).toBe(current?.version);
            }
          } else if (step.kind === 'eventual') await service.get('ns', 'k').catch(() => {});
          else if (step.kind === 'write') {
            const grace = { staleWhileRevalidateMs: step.swr, staleIfErrorMs: 0 };
            const ttlSeconds = Math.ceil(step.ttlMs / 1000);
            await service.set('ns', 'k', { value: text(String(now)), contentType: 'text/plain', ttlSeconds, grace });
          } else if (step.kind === 'soft') {
            await service.purge('ns', { keys: ['k'], tags: [], prefix: null, soft: true }).catch(() => {});
          } else if (step.kind === 'outage') down = true;
          else if (step.kind === 'up') down = false;
          else if (step.kind === 'tick') now += step.ms;
        }
        down = false;
        await store.close();
      }),
      runs,
    );
    // The runs did check answers, not only refusals.
    expect(answered).toBeGreaterThan(50);
  });
});
