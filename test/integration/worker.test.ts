import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { buildWorker } from '../../scripts/build-worker.ts';
import { originFor } from '../support/stack.ts';

/**
 * The same edge app inside real workerd (Miniflare), against a running origin.
 */
describe('edge on Cloudflare Workers (workerd via Miniflare)', () => {
  let origin: RunningOrigin;
  let mf: Miniflare;

  beforeAll(async () => {
    origin = await originFor();
    mf = new Miniflare({
      modules: true,
      scriptPath: await buildWorker(),
      compatibilityDate: '2025-09-01',
      bindings: { ORIGIN_URL: origin.url, EDGE_MAX_TTL_SECONDS: '30' },
    });
    await mf.ready;
  });
  afterAll(async () => {
    await mf?.dispose();
    await origin?.close();
  });

  it('serves a miss, then a hit from the isolate tier', async () => {
    const put = await fetch(`${origin.url}/api/v1/cache/workers/greeting?ttl=60`, {
      method: 'PUT',
      body: 'hello from the origin',
      headers: { 'Content-Type': 'text/plain' },
    });
    expect(put.status).toBe(200);
    const first = await mf.dispatchFetch('http://edge.test/api/v1/cache/workers/greeting');
    expect(first.status).toBe(200);
    expect(first.headers.get('X-Cache')).toBe('MISS');
    expect(first.headers.get('X-Cache-Tier')).toBe('memory');
    expect(await first.text()).toBe('hello from the origin');
    const second = await mf.dispatchFetch('http://edge.test/api/v1/cache/workers/greeting');
    expect(second.headers.get('X-Cache')).toBe('HIT');
    expect(second.headers.get('X-Cache-Tier')).toBe('edge');
    expect(await second.text()).toBe('hello from the origin');
  });

  it('answers a missing key with the error envelope', async () => {
    const res = await mf.dispatchFetch('http://edge.test/api/v1/cache/workers/absent');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CACHE_001');
  });

  it('forwards writes to the origin', async () => {
    const res = await mf.dispatchFetch('http://edge.test/api/v1/cache/workers/from-worker', {
      method: 'PUT',
      body: 'written in workerd',
    });
    expect(res.status).toBe(200);
    expect(await (await fetch(`${origin.url}/api/v1/cache/workers/from-worker`)).text()).toBe('written in workerd');
  });
});
