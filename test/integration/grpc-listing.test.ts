import { type Client, Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CacheService } from '../../gen/strata/cache/v1/cache_pb.js';
import { type RunningOrigin, startOrigin } from '../../origin/server.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { keyPageSchema } from '../../shared/listing.ts';
import { hs256Issuer } from '../support/jwt.ts';
import { ownPurgeLogKey } from '../support/stack.ts';

/**
 * `ListKeys` through a real gRPC client (Connect's gRPC protocol over
 * HTTP/2) against an origin on real Redis, compared with the REST listing of
 * the same namespace: same keys, same cursor, same grant, same error codes.
 */
describe('key listing over gRPC (real Redis)', () => {
  const issuer = hs256Issuer();
  let origin: RunningOrigin;
  let admin: string;
  const ns = `grpclist${Date.now().toString(36)}`;

  beforeAll(async () => {
    const config = parseConfig(originConfigSchema, {
      ORIGIN_PORT: '0',
      PURGE_LOG_KEY: ownPurgeLogKey(),
      REDIS_URL: inject('redisUrl'),
      LOG_LEVEL: 'silent',
      ...issuer.env,
    });
    origin = await startOrigin(config, { logger: pino({ level: 'silent' }) });
    admin = await issuer.sign({ serviceId: 'svc-ops' });
    for (let i = 0; i < 25; i++) await put(`user:${i}`, `value-${i}`, i === 0 ? '&tags=a,b' : '');
    await put('order:1', 'o');
  });
  afterAll(async () => {
    await origin?.close();
    await issuer.close();
  });

  const rpc = (token: string): Client<typeof CacheService> =>
    createClient(
      CacheService,
      createGrpcTransport({
        baseUrl: origin.url,
        interceptors: [
          (next) => async (req) => {
            req.header.set('authorization', `Bearer ${token}`);
            return await next(req);
          },
        ],
      }),
    );
  async function put(key: string, body: string, query = ''): Promise<void> {
    const res = await fetch(`${origin.url}/api/v1/cache/${ns}/${encodeURIComponent(key)}?ttl=300${query}`, {
      method: 'PUT',
      body,
      headers: { Authorization: `Bearer ${admin}` },
    });
    expect(res.status).toBe(200);
  }
  const failure = async (call: Promise<unknown>) => {
    try {
      await call;
    } catch (error) {
      const e = ConnectError.from(error);
      return { code: e.code, icd: e.metadata.get('x-cache-error-code') };
    }
    return { code: 'ok' as const, icd: null };
  };

  it('pages through every matching key once, with size, TTL left, version and tags', async () => {
    const client = rpc(admin);
    const keys: string[] = [];
    let cursor = '';
    let pages = 0;
    do {
      const page = await client.listKeys({ namespace: ns, match: 'user:*', cursor, count: 4 });
      expect(page.namespace).toBe(ns);
      expect(page.match).toBe('user:*');
      expect(page.keys.length).toBeLessThanOrEqual(4);
      for (const k of page.keys) {
        if (k.key === 'user:0') {
          expect(k.sizeBytes).toBe(BigInt('value-0'.length));
          expect(k.tags).toEqual(['a', 'b']);
          expect(k.ttlMs).toBeGreaterThan(290_000n);
          expect(k.ttlMs).toBeLessThanOrEqual(300_000n);
          expect(k.expiresAtMs).toBeGreaterThan(BigInt(Date.now()));
          expect(k.version).toBeGreaterThan(0n);
        }
      }
      keys.push(...page.keys.map((k) => k.key));
      cursor = page.cursor;
      pages++;
    } while (cursor !== '' && pages < 1_000);
    expect(cursor).toBe('');
    expect(pages).toBeGreaterThan(1);
    expect(keys.length).toBe(new Set(keys).size);
    expect(keys.sort()).toEqual(Array.from({ length: 25 }, (_, i) => `user:${i}`).sort());
  });

  it('an empty match lists every key, and a cursor from REST continues over gRPC', async () => {
    const client = rpc(admin);
    const first = await fetch(`${origin.url}/api/v1/namespaces/${ns}/keys?match=*&count=10`, {
      headers: { Authorization: `Bearer ${admin}` },
    });
    const restPage = keyPageSchema.parse(await first.json());
    const keys = restPage.keys.map((k) => k.key);
    let cursor = restPage.cursor ?? '';
    while (cursor !== '') {
      const page = await client.listKeys({ namespace: ns, match: '*', cursor, count: 1000 });
      keys.push(...page.keys.map((k) => k.key));
      cursor = page.cursor;
    }
    expect(keys.sort()).toEqual([...Array.from({ length: 25 }, (_, i) => `user:${i}`), 'order:1'].sort());
    const all: string[] = [];
    cursor = '';
    do {
      const page = await client.listKeys({ namespace: ns, cursor, count: 1000 });
      expect(page.match).toBe('*');
      all.push(...page.keys.map((k) => k.key));
      cursor = page.cursor;
    } while (cursor !== '');
    expect(all.sort()).toEqual(keys);
  });

  it('a count above 1,000 is capped, not refused; a malformed glob, cursor, count or namespace is CACHE_004', async () => {
    const client = rpc(admin);
    const capped = await client.listKeys({ namespace: ns, match: 'order:*', count: 5_000 });
    expect(capped.keys.map((k) => k.key)).toEqual(['order:1']);
    for (const req of [
      { namespace: ns, match: 'user:[' },
      { namespace: ns, match: '*', cursor: 'not a cursor' },
      { namespace: ns, match: '*', count: -1 },
      { namespace: 'bad namespace!', match: '*' },
    ]) {
      expect(await failure(client.listKeys(req))).toEqual({ code: Code.InvalidArgument, icd: 'CACHE_004' });
    }
    const other = await client.listKeys({ namespace: ns, match: 'user:*', count: 1 });
    expect(other.cursor).not.toBe('');
    // A cursor is bound to its glob, as on REST.
    expect(await failure(client.listKeys({ namespace: ns, match: 'order:*', cursor: other.cursor }))).toEqual({
      code: Code.InvalidArgument,
      icd: 'CACHE_004',
    });
  });

  it('needs cache:read in the namespace, as REST does', async () => {
    const writer = await issuer.sign({ scope: ['cache:write'], ns: [ns] });
    const elsewhere = await issuer.sign({ scope: ['cache:read'], ns: ['other'] });
    const reader = await issuer.sign({ scope: ['cache:read'], ns: [ns] });
    expect(await failure(rpc(writer).listKeys({ namespace: ns }))).toEqual({
      code: Code.PermissionDenied,
      icd: 'AUTH_002',
    });
    expect(await failure(rpc(elsewhere).listKeys({ namespace: ns }))).toEqual({
      code: Code.PermissionDenied,
      icd: 'AUTH_002',
    });
    expect(await failure(rpc('not-a-token').listKeys({ namespace: ns }))).toEqual({
      code: Code.Unauthenticated,
      icd: 'AUTH_001',
    });
    expect((await rpc(reader).listKeys({ namespace: ns, match: 'order:*', count: 1000 })).keys.length).toBe(1);
    // REST gives the same answers to the same tokens.
    const rest = (token: string) =>
      fetch(`${origin.url}/api/v1/namespaces/${ns}/keys`, { headers: { Authorization: `Bearer ${token}` } });
    expect((await rest(writer)).status).toBe(403);
    expect((await rest(reader)).status).toBe(200);
  });
});
