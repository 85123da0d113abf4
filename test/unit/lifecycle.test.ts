import { describe, expect, it } from 'vitest';
import { CacheService } from '../../origin/cache-service.ts';
import { decodeInvalidation, InvalidationApplier } from '../../origin/invalidation/applier.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import {
  formatGrace,
  formatPreferences,
  parseGrace,
  parseWriteCacheControl,
  readCacheControl,
  readPreferences,
  writeLifetime,
} from '../../shared/lifecycle.ts';

describe('entry lifecycle headers', () => {
  it('a write’s Cache-Control gives the TTL and both grace windows, ignoring other directives', () => {
    expect(parseWriteCacheControl('max-age=60, stale-while-revalidate=30, Stale-If-Error="600", public')).toEqual({
      maxAgeSeconds: 60,
      staleWhileRevalidateSeconds: 30,
      staleIfErrorSeconds: 600,
    });
    expect(writeLifetime(undefined, { maxAgeSeconds: 60, staleIfErrorSeconds: 5 })).toEqual({
      ttlSeconds: 60,
      grace: { staleWhileRevalidateMs: 0, staleIfErrorMs: 5_000 },
    });
  });

  it('malformed or out-of-range directives, and a ttl that differs from max-age, are CACHE_004', () => {
    for (const bad of [
      'max-age=0',
      'max-age=-1',
      'max-age',
      'stale-if-error=1e3',
      'stale-while-revalidate=99999999999',
    ])
      expect(() => parseWriteCacheControl(bad), bad).toThrow(expect.objectContaining({ code: 'CACHE_004' }));
    expect(() => writeLifetime(30, { maxAgeSeconds: 60 })).toThrow(expect.objectContaining({ code: 'CACHE_004' }));
    expect(writeLifetime(60, { maxAgeSeconds: 60 }).ttlSeconds).toBe(60);
  });

  it('a read’s Cache-Control tells what remains through max-age − Age, and keeps the writer’s windows', () => {
    const entry = { createdAtMs: 0, expiresAtMs: 60_000, staleWhileRevalidateMs: 30_000, staleIfErrorMs: 600_000 };
    expect(readCacheControl(entry, 10, 10_500)).toBe('max-age=59, stale-while-revalidate=30, stale-if-error=600');
    // Stale: max-age is the lifetime, at most Age.
    expect(readCacheControl(entry, 70, 70_000)).toBe('max-age=60, stale-while-revalidate=30, stale-if-error=600');
    expect(readCacheControl({ createdAtMs: 0, expiresAtMs: 5_000 }, 1, 1_000)).toBe('max-age=5');
  });

  it('Prefer asks for the lease and a wait in whole seconds capped at 10; unknown or malformed preferences are ignored', () => {
    expect(readPreferences('lease')).toEqual({ lease: true, waitSeconds: 0 });
    expect(readPreferences('respond-async, wait=5')).toEqual({ lease: true, waitSeconds: 5 });
    expect(readPreferences('wait=600')).toEqual({ lease: true, waitSeconds: 10 });
    expect(readPreferences('wait=1.5; handling=lenient')).toEqual({ lease: false, waitSeconds: 0 });
    expect(readPreferences(undefined)).toEqual({ lease: false, waitSeconds: 0 });
    expect(formatPreferences({ lease: true, waitSeconds: 3 })).toBe('lease, wait=3');
    expect(formatPreferences({ lease: false, waitSeconds: 0 })).toBeUndefined();
  });

  it('the origin-to-edge grace header round-trips exactly, and a malformed one gives no grace', () => {
    const grace = { staleWhileRevalidateMs: 1_234, staleIfErrorMs: 0 };
    expect(parseGrace(formatGrace(grace))).toEqual(grace);
    expect(parseGrace('swr=1;sie=x')).toEqual({ staleWhileRevalidateMs: 0, staleIfErrorMs: 0 });
  });
});

describe('soft purge from an invalidation event', () => {
  it('an event with "soft": true marks the entry stale instead of removing it; without it the entry goes', async () => {
    const service = new CacheService({
      store: passThroughStore(memoryStore({ maxBytes: 1 << 20 })),
      bus: new InProcessPurgeBus({ retainedEntries: 16 }),
      defaultTtlSeconds: 60,
      maxValueBytes: 1024,
    });
    const applier = new InvalidationApplier({ service, dedupWindow: 16 });
    const grace = { staleWhileRevalidateMs: 60_000, staleIfErrorMs: 0 };
    for (const key of ['a', 'b']) {
      await service.set('ns', key, { value: new TextEncoder().encode(key), contentType: 'text/plain', grace });
    }
    const decode = (raw: object) => {
      const result = decodeInvalidation(Buffer.from(JSON.stringify(raw)));
      if (!result.ok) throw new Error(result.reason);
      return result.event;
    };
    const base = { namespace: 'ns', action: 'delete', timestamp: Date.now() };
    await applier.apply(decode({ ...base, id: 's', keys: ['a'], soft: true }), 'in-process');
    await applier.apply(decode({ ...base, id: 'h', keys: ['b'] }), 'in-process');
    expect(await service.get('ns', 'a')).toMatchObject({ status: 'STALE', staleReason: 'soft-purge' });
    expect((await service.get('ns', 'b')).entry).toBeNull();
  });
});
