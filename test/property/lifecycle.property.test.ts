import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EdgeCache } from '../../edge/core/edge-cache.ts';
import { memoryTier } from '../../edge/core/memory-tier.ts';
import { CacheService } from '../../origin/cache-service.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import { CacheError } from '../../shared/errors.ts';
import { freshness } from '../../shared/lifecycle.ts';
import { originRead } from '../support/fixtures.ts';

/** fast-check prints the seed and the shrunk counterexample on failure. */
const runs = { numRuns: 200 };
const windowMs = fc.integer({ min: 0, max: 5_000 });
const text = (s: string) => new TextEncoder().encode(s);

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
        const service = new CacheService({
          store: passThroughStore(memoryStore({ maxBytes: 1 << 20, now: () => now })),
          bus: new InProcessPurgeBus({ retainedEntries: 64 }),
          defaultTtlSeconds: 2,
          maxValueBytes: 1024,
          now: () => now,
        });
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
