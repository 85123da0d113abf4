import { describe, expect, it } from 'vitest';
import { createOriginApp } from '../../origin/app.ts';
import { CacheService } from '../../origin/cache-service.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import { noMetrics } from '../../shared/metrics.ts';

/**
 * Hono's SmartRouter picks RegExpRouter (one regular expression per method)
 * unless some pair of routes is beyond it, and then falls back to TrieRouter
 * for every request. The origin's routes must stay within RegExpRouter, as
 * the edge's do (`edge-router.test.ts`).
 */
describe('origin routing', () => {
  function origin() {
    const memory = memoryStore({ maxBytes: 1 << 20 });
    const bus = new InProcessPurgeBus({ retainedEntries: 16 });
    const service = new CacheService({
      store: passThroughStore(memory, memory),
      bus,
      defaultTtlSeconds: 60,
      maxValueBytes: 1 << 16,
    });
    return createOriginApp({ service, bus, metrics: noMetrics, maxValueBytes: 1 << 16, heartbeatMs: 60_000 });
  }

  it('uses RegExpRouter', async () => {
    const app = origin();
    await app.request('/health');
    const router = app.router as unknown as { activeRouter?: { name: string } };
    expect(router.activeRouter?.name).toBe('RegExpRouter');
  });

  it('still answers the pattern listing, and 404 CACHE_001 for other three-segment paths', async () => {
    const app = origin();
    await app.request('/api/v1/cache/ns/k1', { method: 'PUT', body: 'v' });
    const listing = await app.request('/api/v1/cache/ns/pattern/k*');
    expect(listing.status).toBe(200);
    expect(((await listing.json()) as { keys: { key: string }[] }).keys.map((k) => k.key)).toEqual(['k1']);
    const other = await app.request('/api/v1/cache/ns/other/k1');
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ error: { code: 'CACHE_001' } });
  });
});
