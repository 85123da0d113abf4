import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * One origin on real Redis, two Node edges subscribed to its purge stream,
 * all over real HTTP on loopback.
 */
describe('origin + two edges on real Redis', () => {
  let origin: RunningOrigin;
  let a: RunningEdge;
  let b: RunningEdge;
  const ns = `e2e${Date.now().toString(36)}`;

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: inject('redisUrl') });
    a = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '30' });
    b = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '30' });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await origin?.close();
  });

  const put = (edge: RunningEdge, key: string, body: string, query = '') =>
    fetch(`${edge.url}/api/v1/cache/${ns}/${encodeURIComponent(key)}${query}`, {
      method: 'PUT',
      body,
      headers: { 'Content-Type': 'text/plain' },
    });
  const get = (edge: RunningEdge, key: string, headers: Record<string, string> = {}) =>
    fetch(`${edge.url}/api/v1/cache/${ns}/${encodeURIComponent(key)}`, { headers });

  it('a PUT then two GETs: the second is an edge HIT with ETag, Age and request id', async () => {
    expect((await put(b, 'greeting', 'hello', '?ttl=60')).status).toBe(200);
    const first = await get(a, 'greeting', { 'X-Request-Id': 'req-123' });
    expect(first.status).toBe(200);
    expect(await first.text()).toBe('hello');
    expect(first.headers.get('X-Cache')).toBe('MISS');
    expect(first.headers.get('X-Cache-Tier')).toBe('redis');
    expect(first.headers.get('X-Request-Id')).toBe('req-123');
    const second = await get(a, 'greeting');
    expect(second.headers.get('X-Cache')).toBe('HIT');
    expect(second.headers.get('X-Cache-Tier')).toBe('edge');
    expect(second.headers.get('ETag')).toBe(first.headers.get('ETag'));
    expect(Number(second.headers.get('Age'))).toBeGreaterThanOrEqual(0);
    expect(second.headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(second.headers.get('Content-Type')).toBe('text/plain');
  });

  it('a conditional GET with a matching ETag answers 304 without a body', async () => {
    await put(a, 'etag', 'body');
    const etag = (await get(a, 'etag')).headers.get('ETag')!;
    const conditional = await get(a, 'etag', { 'If-None-Match': etag });
    expect(conditional.status).toBe(304);
    expect(await conditional.text()).toBe('');
    expect((await get(b, 'etag', { 'If-None-Match': '"v1"' })).status).toBe(200);
  });

  it('a write through edge A is served by edge B within a deadline, and B never serves the old value after the purge arrived', async () => {
    for (let round = 0; round < 50; round++) {
      const key = `race-${round % 5}`;
      await put(a, key, `old-${round}`);
      expect(await (await get(b, key)).text()).toBe(`old-${round}`);
      const ack = await put(a, key, `new-${round}`);
      expect(ack.status).toBe(200);
      // The write's purge is the log's head once acknowledged (positions are opaque: compare whole).
      const purged = origin.bus.health().position;
      // Once edge B has applied the purge of that write, it must never answer the old value.
      await eventually('edge B to apply the purge', () => b.subscription.position === purged, 2_000);
      const body = await (await get(b, key)).text();
      expect(body).toBe(`new-${round}`);
    }
  });

  it('a delete at one edge makes the other edge miss', async () => {
    await put(a, 'doomed', 'x');
    expect((await get(b, 'doomed')).status).toBe(200);
    expect((await get(b, 'doomed')).headers.get('X-Cache')).toBe('HIT');
    const del = await fetch(`${a.url}/api/v1/cache/${ns}/doomed`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    await eventually('edge B to miss', async () => (await get(b, 'doomed')).status === 404, 2_000);
    const miss = await get(a, 'doomed');
    expect(miss.status).toBe(404);
    expect((await miss.json()).error.code).toBe('CACHE_001');
  });

  it('binary values keep every byte and their content type', async () => {
    const bytes = new Uint8Array(256).map((_, i) => i);
    const res = await fetch(`${a.url}/api/v1/cache/${ns}/bin`, {
      method: 'PUT',
      body: bytes,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    expect(res.status).toBe(200);
    const read = await get(b, 'bin');
    expect(read.headers.get('Content-Type')).toBe('application/octet-stream');
    expect([...new Uint8Array(await read.arrayBuffer())]).toEqual([...bytes]);
  });

  it('batch set and batch get through an edge', async () => {
    const set = await fetch(`${a.url}/api/v1/cache/${ns}/batch/set`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ entries: { b1: 'one', b2: 'two' }, ttl: 60 }),
    });
    expect(await set.json()).toEqual({ stored_count: 2 });
    const got = await fetch(`${b.url}/api/v1/cache/${ns}/batch/get`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ keys: ['b1', 'b2', 'b3'] }),
    });
    expect(await got.json()).toEqual({ values: { b1: 'one', b2: 'two' }, missing_keys: ['b3'], encoding: 'utf8' });
  });

  it('a batch set purges older copies held by edges', async () => {
    await put(a, 'bs', 'before');
    expect(await (await get(b, 'bs')).text()).toBe('before');
    await fetch(`${a.url}/api/v1/cache/${ns}/batch/set`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ entries: { bs: 'after' } }),
    });
    await eventually(
      'edge B to serve the batch write',
      async () => (await (await get(b, 'bs')).text()) === 'after',
      2_000,
    );
  });

  it('a purge by keys through the REST API reaches both edges', async () => {
    await put(a, 'p1', 'x');
    await get(a, 'p1');
    await get(b, 'p1');
    const res = await fetch(`${a.url}/api/v1/purge`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ namespace: ns, keys: ['p1'] }),
    });
    expect(res.status).toBe(200);
    expect((await res.json()).purged_count).toBe(1);
    for (const edge of [a, b])
      await eventually('edges to miss p1', async () => (await get(edge, 'p1')).status === 404, 2_000);
  });
});
