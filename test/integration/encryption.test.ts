import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { encryptedContentType } from '../../shared/crypto.ts';
import { edgeFor, originFor } from '../support/stack.ts';

/**
 * Encryption at rest against a real Redis: what Redis holds is an envelope,
 * reads through origin and edge are plaintext, tampering is an error, and key
 * rotation across origin restarts keeps older values readable.
 */

const key32 = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');
const k1 = `k1:${key32()}`;
const k2 = `k2:${key32()}`;
const ns = `enc-${Date.now().toString(36)}`;

describe('encryption at rest', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  const redisUrl = inject('redisUrl');

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: redisUrl, ENCRYPTION_KEYS: k1, ENCRYPTED_NAMESPACES: `${ns}-all` });
    edge = await edgeFor(origin.url);
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  const rawValue = async (o: RunningOrigin, namespace: string, key: string) => {
    const entry = await o.store.get(namespace, key);
    return entry ? { text: Buffer.from(entry.value).toString('latin1'), contentType: entry.contentType } : null;
  };

  it('?encrypt=true and X-Cache-Encrypt store an envelope in Redis and read back plaintext at edge and origin', async () => {
    const viaQuery = await fetch(`${origin.url}/api/v1/cache/${ns}/q?encrypt=true`, {
      method: 'PUT',
      body: 'secret by query',
      headers: { 'Content-Type': 'text/plain' },
    });
    expect(viaQuery.status).toBe(200);
    const viaEdge = await fetch(`${edge.url}/api/v1/cache/${ns}/h`, {
      method: 'PUT',
      body: 'secret by header',
      headers: { 'Content-Type': 'text/plain', 'X-Cache-Encrypt': 'true' },
    });
    expect(viaEdge.status).toBe(200);
    for (const [key, text] of [
      ['q', 'secret by query'],
      ['h', 'secret by header'],
    ]) {
      const stored = await rawValue(origin, ns, key!);
      expect(stored?.contentType).toBe(encryptedContentType);
      expect(stored?.text).not.toContain('secret');
      const read = await fetch(`${origin.url}/api/v1/cache/${ns}/${key}`);
      expect([read.status, read.headers.get('Content-Type'), await read.text()]).toEqual([200, 'text/plain', text]);
      const edgeRead = await fetch(`${edge.url}/api/v1/cache/${ns}/${key}`);
      expect(await edgeRead.text()).toBe(text);
    }
  });

  it('a namespace in ENCRYPTED_NAMESPACES is encrypted without asking, batches included', async () => {
    const all = `${ns}-all`;
    await fetch(`${origin.url}/api/v1/cache/${all}/one`, { method: 'PUT', body: 'plain?' });
    const batch = await fetch(`${origin.url}/api/v1/cache/${all}/batch/set`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ entries: { two: 'also secret' } }),
    });
    expect(batch.status).toBe(200);
    expect((await rawValue(origin, all, 'one'))?.contentType).toBe(encryptedContentType);
    expect((await rawValue(origin, all, 'two'))?.text).not.toContain('secret');
    const got = await fetch(`${origin.url}/api/v1/cache/${all}/batch/get`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ keys: ['one', 'two'] }),
    });
    expect((await got.json()).values).toEqual({ one: 'plain?', two: 'also secret' });
  });

  it('gRPC Set with encrypt=true is accepted and stored encrypted', async () => {
    const res = await fetch(`${origin.url}/strata.cache.v1.CacheService/Set`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        namespace: ns,
        key: 'rpc',
        value: Buffer.from('rpc secret').toString('base64'),
        encrypt: true,
      }),
    });
    expect(res.status).toBe(200);
    expect((await rawValue(origin, ns, 'rpc'))?.contentType).toBe(encryptedContentType);
    const get = await fetch(`${origin.url}/strata.cache.v1.CacheService/Get`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ namespace: ns, key: 'rpc' }),
    });
    expect(Buffer.from((await get.json()).value, 'base64').toString()).toBe('rpc secret');
  });

  it('tampered ciphertext in Redis is 503 CACHE_005, never garbage', async () => {
    await fetch(`${origin.url}/api/v1/cache/${ns}/t?encrypt=true`, { method: 'PUT', body: 'untouchable' });
    const entry = (await origin.store.get(ns, 't'))!;
    const bad = entry.value.slice();
    bad[bad.byteLength - 3]! ^= 0x01;
    await origin.store.set(ns, 't', { value: bad, contentType: entry.contentType, ttlMs: 60_000, tags: [] });
    const read = await fetch(`${origin.url}/api/v1/cache/${ns}/t`);
    expect(read.status).toBe(503);
    expect((await read.json()).error.code).toBe('CACHE_005');
  });

  it('the reserved content type and encrypt=maybe are 400 CACHE_004', async () => {
    const reserved = await fetch(`${origin.url}/api/v1/cache/${ns}/r`, {
      method: 'PUT',
      body: 'x',
      headers: { 'Content-Type': encryptedContentType },
    });
    expect(reserved.status).toBe(400);
    const maybe = await fetch(`${origin.url}/api/v1/cache/${ns}/r?encrypt=maybe`, { method: 'PUT', body: 'x' });
    expect(maybe.status).toBe(400);
    await reserved.text();
    await maybe.text();
  });

  it('rotation: write with key 1, restart with key 2 current, read old and write new; retire key 1', async () => {
    const rot = `${ns}-rot`;
    await fetch(`${origin.url}/api/v1/cache/${rot}/old?encrypt=true`, { method: 'PUT', body: 'written with k1' });
    const rotated = await originFor({ REDIS_URL: redisUrl, ENCRYPTION_KEYS: `${k2},${k1}` });
    try {
      expect(await (await fetch(`${rotated.url}/api/v1/cache/${rot}/old`)).text()).toBe('written with k1');
      await fetch(`${rotated.url}/api/v1/cache/${rot}/new?encrypt=true`, { method: 'PUT', body: 'written with k2' });
      expect((await rawValue(rotated, rot, 'new'))?.text.slice(5, 7)).toBe('k2');
    } finally {
      await rotated.close();
    }
    const retired = await originFor({ REDIS_URL: redisUrl, ENCRYPTION_KEYS: k2 });
    try {
      expect(await (await fetch(`${retired.url}/api/v1/cache/${rot}/new`)).text()).toBe('written with k2');
      const old = await fetch(`${retired.url}/api/v1/cache/${rot}/old`);
      expect(old.status).toBe(503);
      await old.text();
    } finally {
      await retired.close();
    }
  });

  it('without ENCRYPTION_KEYS, encrypt=true is 400 CACHE_004', async () => {
    const plain = await originFor({});
    try {
      const res = await fetch(`${plain.url}/api/v1/cache/${ns}/x?encrypt=true`, { method: 'PUT', body: 'x' });
      expect([res.status, (await res.json()).error.code]).toEqual([400, 'CACHE_004']);
    } finally {
      await plain.close();
    }
  });
});
