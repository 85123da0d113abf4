import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import { compressedContentType } from '../../origin/compression.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { encryptedContentType } from '../../shared/crypto.ts';
import { edgeFor, originFor } from '../support/stack.ts';

/**
 * Compression against a real Redis behind a real edge: what Redis holds,
 * what clients read at edge and origin, the per-write header relayed by the
 * edge, encryption winning over compression, and the byte counters.
 */

const ns = `zst-${Date.now().toString(36)}`;
const body = JSON.stringify({
  rows: Array.from({ length: 400 }, (_, i) => ({ id: i, name: `row-${i}`, on: i % 2 === 0 })),
});

describe('compression at the origin', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;

  beforeAll(async () => {
    origin = await originFor({
      REDIS_URL: inject('redisUrl'),
      ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 3).toString('base64')}`,
    });
    edge = await edgeFor(origin.url);
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  const put = (url: string, key: string, extra: Record<string, string> = {}) =>
    fetch(`${url}/api/v1/cache/${ns}/${key}`, {
      method: 'PUT',
      body,
      headers: { 'Content-Type': 'application/json', ...extra },
    });
  const counter = async (name: string) => {
    const text = await (await fetch(`${origin.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
    return Number(line?.split(' ').at(-1));
  };

  it('stores a large value compressed, serves the original bytes at origin and edge, and counts bytes before and after', async () => {
    const inBefore = await counter('strata_compression_input_bytes_total');
    const outBefore = await counter('strata_compression_output_bytes_total');
    expect((await put(origin.url, 'auto')).status).toBe(200);
    const stored = (await origin.store.get(ns, 'auto'))!;
    expect(stored.contentType).toBe(compressedContentType);
    expect(stored.value.byteLength).toBeLessThan(Buffer.byteLength(body));
    for (const base of [origin.url, edge.url]) {
      const read = await fetch(`${base}/api/v1/cache/${ns}/auto`);
      expect(read.headers.get('Content-Type')).toBe('application/json');
      expect(await read.text()).toBe(body);
    }
    expect((await counter('strata_compression_input_bytes_total')) - inBefore).toBe(Buffer.byteLength(body));
    expect((await counter('strata_compression_output_bytes_total')) - outBefore).toBe(stored.value.byteLength);
  });

  it('the edge relays X-Cache-Compress: false stores the value as it is', async () => {
    expect((await put(edge.url, 'off', { 'X-Cache-Compress': 'false' })).status).toBe(200);
    const stored = (await origin.store.get(ns, 'off'))!;
    expect(stored.contentType).toBe('application/json');
    expect(Buffer.from(stored.value).toString()).toBe(body);
  });

  it('an encrypted write is stored encrypted and uncompressed even when compression is asked for', async () => {
    expect((await put(edge.url, 'secret', { 'X-Cache-Compress': 'true', 'X-Cache-Encrypt': 'true' })).status).toBe(200);
    const stored = (await origin.store.get(ns, 'secret'))!;
    expect(stored.contentType).toBe(encryptedContentType);
    expect(stored.value.byteLength).toBeGreaterThan(Buffer.byteLength(body));
    expect(await (await fetch(`${edge.url}/api/v1/cache/${ns}/secret`)).text()).toBe(body);
  });
});
