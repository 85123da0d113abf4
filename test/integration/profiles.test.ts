import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { edgeFor, originFor } from '../support/stack.ts';

/**
 * Cache profiles (`CACHE_PROFILES`) over real HTTP on real Redis: defaults
 * per namespace and key prefix, and `strong` keys whose every read at the
 * edge is confirmed by the origin.
 */
describe('cache profiles', () => {
  let dir: string;
  let origin: RunningOrigin;
  let edge: RunningEdge;
  const ns = `prof${Date.now().toString(36)}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-profiles-'));
    const file = join(dir, 'profiles.json');
    writeFileSync(
      file,
      JSON.stringify({
        profiles: [
          { namespace: ns, ttl: 300, stale_while_revalidate: 30, consistency: 'eventual' },
          { namespace: ns, key_prefix: 'character_data:', ttl: 3600, consistency: 'strong' },
        ],
      }),
    );
    origin = await originFor({ REDIS_URL: inject('redisUrl'), CACHE_PROFILES: file });
    edge = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '300' });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const url = (key: string) => `${edge.url}/api/v1/cache/${ns}/${key}`;
  /** A write straight into the origin's store, behind every edge's back (no purge). */
  const behindTheBack = (key: string, value: string) =>
    origin.service.store.set(ns, key, {
      value: new TextEncoder().encode(value),
      contentType: 'text/plain',
      ttlMs: 60_000,
      tags: [],
    });

  it('a write without TTL or grace takes its profile’s, the longest matching key prefix first', async () => {
    const before = Date.now();
    const plain = (await (await fetch(url('computation:1'), { method: 'PUT', body: 'x' })).json()) as {
      expires_at_ms: number;
    };
    expect(plain.expires_at_ms - before).toBeGreaterThan(299_000);
    expect(plain.expires_at_ms - before).toBeLessThanOrEqual(301_000);
    expect((await fetch(url('computation:1'))).headers.get('Cache-Control')).toMatch(/stale-while-revalidate=30$/);
    const strong = (await (await fetch(url('character_data:1'), { method: 'PUT', body: 'x' })).json()) as {
      expires_at_ms: number;
    };
    expect(strong.expires_at_ms - before).toBeGreaterThan(3_599_000);
  });

  it('a strong key is confirmed by the origin on every edge read, so it never answers older than the store', async () => {
    await fetch(url('character_data:7'), { method: 'PUT', body: 'v1' });
    const first = await fetch(url('character_data:7'));
    expect(await first.text()).toBe('v1');
    expect(first.headers.get('X-Cache-Consistency')).toBe('strong');
    await behindTheBack('character_data:7', 'v2');
    expect(await (await fetch(url('character_data:7'))).text()).toBe('v2');
  });

  it('an eventual key is served from the edge, and a read with Cache-Control: no-cache asks the origin', async () => {
    await fetch(url('computation:7'), { method: 'PUT', body: 'v1' });
    expect(await (await fetch(url('computation:7'))).text()).toBe('v1');
    await behindTheBack('computation:7', 'v2');
    const cached = await fetch(url('computation:7'));
    expect(cached.headers.get('X-Cache')).toBe('HIT');
    expect(await cached.text()).toBe('v1');
    expect(await (await fetch(url('computation:7'), { headers: { 'Cache-Control': 'no-cache' } })).text()).toBe('v2');
  });
});
