import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CacheClient, CacheSource, createCacheClient, text } from '../../client/index.ts';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { bufCurl, type GrpcJsClient, grpcJsClient } from '../support/grpc-clients.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The origin's `strata.cache.v1.CacheService` through three real clients on
 * the REST port — the generated Connect client over gRPC-web (HTTP/1.1),
 * @grpc/grpc-js over plain gRPC (h2c), and `buf curl` — each compared with the
 * REST API on the same keys, and with an edge in both directions.
 */
describe('gRPC API on the origin port (real Redis, real edge)', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  let web: CacheClient;
  let gjs: GrpcJsClient;
  const ns = `grpc${Date.now().toString(36)}`;

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: inject('redisUrl') });
    edge = await edgeFor(origin.url, { EDGE_MAX_TTL_SECONDS: '30' });
    web = createCacheClient({ baseUrl: origin.url, namespace: ns, timeoutMs: 10_000 });
    gjs = grpcJsClient(origin.port);
  });
  afterAll(async () => {
    gjs?.close();
    await edge?.close();
    await origin?.close();
  });

  const rest = (base: string, key: string, init?: RequestInit) =>
    fetch(`${base}/api/v1/cache/${ns}/${encodeURIComponent(key)}`, init);
  const restPut = async (base: string, key: string, body: string, query = '', type = 'text/plain') => {
    const res = await fetch(`${base}/api/v1/cache/${ns}/${encodeURIComponent(key)}${query}`, {
      method: 'PUT',
      body,
      headers: { 'Content-Type': type },
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { version: number; expires_at_ms: number };
  };
  const restBatchGet = async (keys: string[]) => {
    const res = await fetch(`${origin.url}/api/v1/cache/${ns}/batch/get`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ keys }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { values: Record<string, string>; missing_keys: string[] };
  };
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('gRPC-web (generated Connect client): set with TTL, tags and content type is what REST reads, and the reverse', async () => {
    const written = await web.set('user:1', 'alice', { ttlSeconds: 120, tags: ['team-a'], contentType: 'text/plain' });
    expect(written.degraded).toBe(false);
    const read = await rest(origin.url, 'user:1');
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('alice');
    expect(read.headers.get('Content-Type')).toBe('text/plain');
    expect(read.headers.get('X-Cache-Version')).toBe(String(written.version));
    expect(read.headers.get('X-Cache-Expires-At')).toBe(String(written.expiresAtMs));
    expect(read.headers.get('Cache-Tag')).toBe('team-a');
    expect(written.expiresAtMs - Date.now()).toBeGreaterThan(100_000);

    const put = await restPut(origin.url, 'user:2', 'bob', '?ttl=60&tags=team-b', 'application/json');
    const entry = await web.get('user:2');
    expect(entry && text(entry)).toBe('bob');
    expect(entry).toMatchObject({
      contentType: 'application/json',
      version: put.version,
      expiresAtMs: put.expires_at_ms,
      tags: ['team-b'],
      source: CacheSource.REDIS,
      stale: false,
      degraded: false,
    });
  });

  it('gRPC-web: a miss is found=false (null), as in the design, where REST answers 404 CACHE_001', async () => {
    expect(await web.get('never-written')).toBeNull();
    const res = await rest(origin.url, 'never-written');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CACHE_001');
  });

  it('gRPC-web: getMany and setMany equal REST batch get on the same keys', async () => {
    const stored = await web.setMany({ 'm:1': 'one', 'm:2': 'two' }, { ttlSeconds: 60 });
    expect(stored.storedCount).toBe(2);
    expect([...stored.versions.keys()].sort()).toEqual(['m:1', 'm:2']);
    await restPut(origin.url, 'm:3', 'three');
    const keys = ['m:1', 'm:2', 'm:3', 'm:missing'];
    const viaGrpc = await web.getMany(keys);
    const viaRest = await restBatchGet(keys);
    expect(Object.fromEntries([...viaGrpc.values].map(([k, e]) => [k, text(e)]))).toEqual(viaRest.values);
    expect(viaGrpc.missingKeys).toEqual(viaRest.missing_keys);
    expect(viaGrpc.source).toBe(CacheSource.REDIS);
    expect(viaGrpc.values.get('m:1')?.version).toBe(stored.versions.get('m:1'));
  });

  it('gRPC-web: delete and purge by tag, prefix and keys remove what REST then misses', async () => {
    await web.set('p:tagged', 'x', { tags: ['purge-me'] });
    await web.set('p:pre:1', 'x');
    await web.set('p:pre:2', 'x');
    await web.set('p:key', 'x');
    expect(await web.purge({ tags: ['purge-me'] })).toMatchObject({ purgedCount: 1 });
    expect(await web.purge({ prefix: 'p:pre:' })).toMatchObject({ purgedCount: 2 });
    expect(await web.purge({ keys: ['p:key'] })).toMatchObject({ purgedCount: 1 });
    for (const key of ['p:tagged', 'p:pre:1', 'p:pre:2', 'p:key'])
      expect((await rest(origin.url, key)).status).toBe(404);

    await web.set('d:1', 'x');
    expect(await web.delete('d:1')).toMatchObject({ deleted: true, degraded: false });
    expect((await rest(origin.url, 'd:1')).status).toBe(404);
    const again = await web.delete('d:1');
    const restAgain = (await (await rest(origin.url, 'd:1', { method: 'DELETE' })).json()) as { deleted: boolean };
    expect(again.deleted).toBe(false);
    expect(restAgain.deleted).toBe(false);
  });

  it('gRPC-web: health reports Redis up, breaker closed and the invalidation source', async () => {
    expect(await web.health()).toMatchObject({
      healthy: true,
      redisStatus: 'up',
      brokerStatus: 'in-process',
      breakerState: 'closed',
    });
  });

  it('plain gRPC over HTTP/2 (@grpc/grpc-js): every RPC agrees with REST on the same keys', async () => {
    const set = await gjs.call<{ success: boolean; version: number; expiresAtMs: number }>('Set', {
      namespace: ns,
      key: 'g:1',
      value: Buffer.from('via grpc-js'),
      ttlSeconds: 90,
      contentType: 'text/plain',
      tags: ['g'],
    });
    expect(set.message.success).toBe(true);
    const read = await rest(origin.url, 'g:1');
    expect(await read.text()).toBe('via grpc-js');
    expect(read.headers.get('X-Cache-Version')).toBe(String(set.message.version));

    const put = await restPut(origin.url, 'g:2', 'via rest');
    const get = await gjs.call<{ found: boolean; value: Buffer; version: number; source: string }>('Get', {
      namespace: ns,
      key: 'g:2',
    });
    expect(get.message).toMatchObject({ found: true, version: put.version, source: 'CACHE_SOURCE_REDIS' });
    expect(get.message.value.toString()).toBe('via rest');
    expect(get.header.get('x-cache-degraded')).toEqual([]);
    expect((await gjs.call('Get', { namespace: ns, key: 'g:none' })).message).toMatchObject({ found: false });

    const batchSet = await gjs.call<{ storedCount: number }>('BatchSet', {
      namespace: ns,
      entries: { 'g:3': Buffer.from('three'), 'g:4': Buffer.from('four') },
      ttlSeconds: 60,
    });
    expect(batchSet.message.storedCount).toBe(2);
    const keys = ['g:1', 'g:2', 'g:3', 'g:4', 'g:none'];
    const batchGet = await gjs.call<{ values: Record<string, Buffer>; missingKeys: string[] }>('BatchGet', {
      namespace: ns,
      keys,
    });
    const viaRest = await restBatchGet(keys);
    const values = Object.fromEntries(Object.entries(batchGet.message.values).map(([k, v]) => [k, v.toString()]));
    expect(values).toEqual(viaRest.values);
    expect(batchGet.message.missingKeys).toEqual(viaRest.missing_keys);

    expect((await gjs.call('Delete', { namespace: ns, key: 'g:3' })).message).toMatchObject({ deleted: true });
    expect((await rest(origin.url, 'g:3')).status).toBe(404);
    expect((await gjs.call('Purge', { namespace: ns, tags: ['g'] })).message).toMatchObject({ purgedCount: 1 });
    expect((await rest(origin.url, 'g:1')).status).toBe(404);
    expect((await gjs.call('Health', {})).message).toMatchObject({ healthy: true, redisStatus: 'up' });
  });

  for (const protocol of ['grpc', 'grpcweb'] as const) {
    it(`buf curl --protocol ${protocol}: Get, Set, Delete and Health agree with REST`, async () => {
      const key = `curl:${protocol}`;
      const set = await bufCurl(origin.url, protocol, 'Set', {
        namespace: ns,
        key,
        value: b64(`set by buf curl ${protocol}`),
        ttlSeconds: '60',
        contentType: 'text/plain',
      });
      expect(set.exitCode, set.stderr).toBe(0);
      const read = await rest(origin.url, key);
      expect(await read.text()).toBe(`set by buf curl ${protocol}`);
      expect(read.headers.get('X-Cache-Version')).toBe(String(set.json?.version));

      await restPut(origin.url, key, 'rewritten by REST');
      const get = await bufCurl(origin.url, protocol, 'Get', { namespace: ns, key });
      expect(get.exitCode, get.stderr).toBe(0);
      expect(get.json).toMatchObject({ found: true, value: b64('rewritten by REST'), source: 'CACHE_SOURCE_REDIS' });

      const del = await bufCurl(origin.url, protocol, 'Delete', { namespace: ns, key });
      expect(del.json).toMatchObject({ deleted: true });
      expect((await rest(origin.url, key)).status).toBe(404);
      const miss = await bufCurl(origin.url, protocol, 'Get', { namespace: ns, key });
      expect(miss.exitCode, miss.stderr).toBe(0);
      expect(miss.json?.found ?? false).toBe(false);

      const health = await bufCurl(origin.url, protocol, 'Health', {});
      expect(health.json).toMatchObject({ healthy: true });

      const bad = await bufCurl(origin.url, protocol, 'Get', { namespace: 'Not Valid', key });
      expect(bad.exitCode).not.toBe(0);
      expect(bad.error?.code).toBe('invalid_argument');
    });
  }

  it('buf curl --protocol connect: the Connect protocol (JSON) is served on the same port', async () => {
    await restPut(origin.url, 'connect:1', 'json please');
    const get = await bufCurl(origin.url, 'connect', 'Get', { namespace: ns, key: 'connect:1' });
    expect(get.exitCode, get.stderr).toBe(0);
    expect(get.json).toMatchObject({ found: true, value: b64('json please') });
  });

  it('a write over gRPC is served by an edge, and a write through the edge is read over gRPC', async () => {
    await web.set('e:1', 'one', { ttlSeconds: 60 });
    expect(await (await rest(edge.url, 'e:1')).text()).toBe('one');
    const hit = await rest(edge.url, 'e:1');
    expect(hit.headers.get('X-Cache')).toBe('HIT');
    expect(await hit.text()).toBe('one');

    // The gRPC write purges the edge's copy through the purge stream.
    await web.set('e:1', 'two');
    await eventually(
      'edge serves the gRPC-web write',
      async () => (await (await rest(edge.url, 'e:1')).text()) === 'two',
    );
    await gjs.call('Set', { namespace: ns, key: 'e:1', value: Buffer.from('three') });
    await eventually(
      'edge serves the grpc-js write',
      async () => (await (await rest(edge.url, 'e:1')).text()) === 'three',
    );
    await web.delete('e:1');
    await eventually('edge drops the gRPC delete', async () => (await rest(edge.url, 'e:1')).status === 404);

    await restPut(edge.url, 'e:2', 'from the edge', '?ttl=60');
    const viaWeb = await web.get('e:2');
    expect(viaWeb && text(viaWeb)).toBe('from the edge');
    const viaGrpc = await gjs.call<{ value: Buffer }>('Get', { namespace: ns, key: 'e:2' });
    expect(viaGrpc.message.value.toString()).toBe('from the edge');
    const viaCurl = await bufCurl(origin.url, 'grpc', 'Get', { namespace: ns, key: 'e:2' });
    expect(viaCurl.json).toMatchObject({ value: b64('from the edge') });
  });
});
