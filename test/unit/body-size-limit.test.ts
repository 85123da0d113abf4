import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../../shared/http.ts';
import { installErrorHandling, jsonSizeLimit, valueSizeLimit } from '../../shared/http.ts';

/** A body with no declared length: a stream of `n` bytes in chunks (chunked transfer coding). */
const streamOf = (n: number) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      for (let at = 0; at < n; at += 10) controller.enqueue(new Uint8Array(Math.min(10, n - at)));
      controller.close();
    },
  });

function appWith(limit: number | (() => number)) {
  const app = new Hono<AppEnv>();
  installErrorHandling(app);
  app.put('/v', valueSizeLimit(limit), async (c) => c.json({ bytes: (await c.req.arrayBuffer()).byteLength }));
  app.post('/j', jsonSizeLimit(1), async (c) => c.json({ bytes: (await c.req.arrayBuffer()).byteLength }));
  return app;
}

async function put(app: Hono<AppEnv>, body: BodyInit, headers: Record<string, string> = {}) {
  const res = await app.request('/v', { method: 'PUT', body, headers, duplex: 'half' } as RequestInit);
  return { status: res.status, body: (await res.json()) as { bytes?: number; error?: { code: string } } };
}

describe('body size limits', () => {
  it('judges a declared Content-Length without reading the body: that many bytes pass, one more is 413 CACHE_003', async () => {
    const app = appWith(50);
    expect(await put(app, new Uint8Array(50))).toEqual({ status: 200, body: { bytes: 50 } });
    const over = await put(app, new Uint8Array(51));
    expect(over.status).toBe(413);
    expect(over.body.error?.code).toBe('CACHE_003');
  });

  it('counts a body with no declared length as it streams', async () => {
    const app = appWith(50);
    expect(await put(app, streamOf(50))).toEqual({ status: 200, body: { bytes: 50 } });
    const over = await put(app, streamOf(51));
    expect([over.status, over.body.error?.code]).toEqual([413, 'CACHE_003']);
  });

  it('reads a changed limit per request (a configuration reload)', async () => {
    let limit = 50;
    const app = appWith(() => limit);
    expect((await put(app, new Uint8Array(60))).status).toBe(413);
    limit = 100;
    expect((await put(app, new Uint8Array(60))).status).toBe(200);
    expect((await put(app, streamOf(101))).status).toBe(413);
  });

  it('allows JSON bodies of at least 8 MiB, whatever the value limit', async () => {
    const res = await app().request('/j', { method: 'POST', body: new Uint8Array(8 * 1024 * 1024) });
    expect(res.status).toBe(200);
    const over = await app().request('/j', { method: 'POST', body: new Uint8Array(8 * 1024 * 1024 + 1) });
    expect(over.status).toBe(413);
  });
});

const app = () => appWith(1);
