import { constants, zstdCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createOriginApp } from '../../origin/app.ts';
import { CacheService } from '../../origin/cache-service.ts';
import {
  compressedContentType,
  compressValue,
  decompressValue,
  frameContentSize,
  inlineMaxBytes,
  zstdLevel,
} from '../../origin/compression.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import { CacheError } from '../../shared/errors.ts';
import { noMetrics } from '../../shared/metrics.ts';

const json = new TextEncoder().encode('{"user":42,"items":[1,2,3],"label":"strata"}'.repeat(300));

function setup(compressMinBytes = 1024) {
  const store = memoryStore({ maxBytes: 1 << 24 });
  const bus = new InProcessPurgeBus({ retainedEntries: 16 });
  const counted: Array<[number, number]> = [];
  const service = new CacheService({
    store: passThroughStore(store, store),
    bus,
    defaultTtlSeconds: 60,
    maxValueBytes: 1 << 20,
    compressMinBytes,
    onCompressed: (before, after) => counted.push([before, after]),
  });
  const app = createOriginApp({ service, bus, metrics: noMetrics, maxValueBytes: 1 << 20, heartbeatMs: 60_000 });
  return { store, service, app, counted };
}

describe('compression envelope', () => {
  it('round-trips value and content type, and refuses what does not shrink', async () => {
    const packed = await compressValue({ value: json, contentType: 'application/json' });
    expect(packed!.byteLength).toBeLessThan(json.byteLength);
    const opened = await decompressValue(packed!, 1 << 20);
    expect(opened.contentType).toBe('application/json');
    expect(Buffer.from(opened.value).equals(Buffer.from(json))).toBe(true);
    expect(await compressValue({ value: crypto.getRandomValues(new Uint8Array(2048)), contentType: 'x' })).toBeNull();
  });

  it('holds the same zstd frame a one-shot compression of the value gives (the pledged size changes only the context)', async () => {
    const packed = (await compressValue({ value: json, contentType: 'application/json' }))!;
    const frame = zstdCompressSync(json, { params: { [constants.ZSTD_c_compressionLevel]: zstdLevel } });
    const header = 4 + 2 + 'application/json'.length;
    expect(Buffer.from(packed.subarray(header)).equals(frame)).toBe(true);
    // Frame_Header_Descriptor (RFC 8878 §3.1.1.1.1): a content size is declared.
    expect(packed[header + 4]! >> 6).toBeGreaterThan(0);
  });

  it('round-trips on both sides of the inline limit and stops past the value limit on both', async () => {
    const sizes = [200, 300, inlineMaxBytes, inlineMaxBytes + 1, 300_000];
    for (const size of sizes) {
      const value = new Uint8Array(size).map((_, i) => (i * 31) % 97);
      const packed = (await compressValue({ value, contentType: 'x/y' }))!;
      const frame = packed.subarray(4 + 2 + 3);
      expect(frameContentSize(frame), `declared size of ${size}`).toBe(size);
      const opened = await decompressValue(packed, 1 << 20);
      expect(Buffer.from(opened.value).equals(Buffer.from(value)), `round trip of ${size}`).toBe(true);
      await expect(decompressValue(packed, size - 1), `limit at ${size}`).rejects.toThrow();
    }
    expect(frameContentSize(new Uint8Array([1, 2, 3, 4, 5, 6]))).toBeNull();
  });

  it('rejects a malformed envelope and stops inflating past the value limit', async () => {
    await expect(decompressValue(new Uint8Array([1, 2, 3, 4, 5, 6]), 1024)).rejects.toThrow(/bad envelope/);
    const packed = (await compressValue({ value: json, contentType: 'application/json' }))!;
    await expect(decompressValue(packed, json.byteLength - 1)).rejects.toThrow();
  });
});

describe('compression in the origin service', () => {
  it('stores above-threshold values compressed, counts bytes before and after, and the byte budget sees stored bytes', async () => {
    const on = setup();
    const off = setup(0);
    await on.service.set('ns', 'k', { value: json, contentType: 'application/json' });
    await off.service.set('ns', 'k', { value: json, contentType: 'application/json' });
    expect(on.counted).toHaveLength(1);
    const [before, after] = on.counted[0]!;
    expect(before).toBe(json.byteLength);
    expect(after).toBe((await on.store.get('ns', 'k'))!.value.byteLength);
    expect(off.counted).toHaveLength(0);
    // The memory store's budget is value + key + a fixed overhead: the difference is the saving.
    expect(off.store.bytes - on.store.bytes).toBe(before - after);
  });

  it('leaves values at or below the threshold as they are unless the write asks', async () => {
    const { service, store } = setup();
    const small = json.subarray(0, 1024);
    await service.set('ns', 'small', { value: small, contentType: 'text/plain' });
    await service.set('ns', 'asked', { value: small, contentType: 'text/plain', compress: true });
    expect((await store.get('ns', 'small'))!.contentType).toBe('text/plain');
    expect((await store.get('ns', 'asked'))!.contentType).toBe(compressedContentType);
  });

  it('refuses the reserved content type with CACHE_004', async () => {
    const { service } = setup();
    await expect(service.set('ns', 'k', { value: json, contentType: compressedContentType })).rejects.toBeInstanceOf(
      CacheError,
    );
  });

  it('REST: X-Cache-Compress false stores as is, true compresses, anything else is 400 CACHE_004; reads get the original bytes', async () => {
    const { app, store } = setup();
    const put = (key: string, compress?: string) =>
      app.request(`/api/v1/cache/ns/${key}`, {
        method: 'PUT',
        body: json,
        headers: { 'Content-Type': 'application/json', ...(compress ? { 'X-Cache-Compress': compress } : {}) },
      });
    expect((await put('off', 'false')).status).toBe(200);
    expect((await put('on', 'true')).status).toBe(200);
    const bad = await put('bad', 'yes');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'CACHE_004' } });
    expect((await store.get('ns', 'off'))!.contentType).toBe('application/json');
    expect((await store.get('ns', 'on'))!.contentType).toBe(compressedContentType);
    const read = await app.request('/api/v1/cache/ns/on');
    expect(read.headers.get('Content-Type')).toBe('application/json');
    expect(Buffer.from(await read.arrayBuffer()).equals(Buffer.from(json))).toBe(true);
  });

  it('REST batch set: compress false keeps every entry as is', async () => {
    const { app, store } = setup();
    const text = new TextDecoder().decode(json);
    const res = await app.request('/api/v1/cache/ns/batch/set', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ entries: { a: text, b: text }, encoding: 'utf8', compress: false }),
    });
    expect(res.status).toBe(200);
    expect((await store.get('ns', 'a'))!.value.byteLength).toBe(json.byteLength);
    const auto = await app.request('/api/v1/cache/ns/batch/set', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ entries: { c: text }, encoding: 'utf8' }),
    });
    expect(auto.status).toBe(200);
    expect((await store.get('ns', 'c'))!.contentType).toBe(compressedContentType);
  });
});
