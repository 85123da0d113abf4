import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Client, Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CacheService } from '../../gen/strata/cache/v1/cache_pb.js';
import { envWithConfigFile } from '../../origin/reload.ts';
import { type RunningOrigin, startOrigin } from '../../origin/server.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { namespaceStatsSchema, namespacesOverviewSchema, namespaceVersionInfoSchema } from '../../shared/schemas.ts';
import { hs256Issuer, type TokenClaims } from '../support/jwt.ts';
import { ownPurgeLogKey } from '../support/stack.ts';

/**
 * The management RPCs (FlushNamespace, GetNamespaceVersion,
 * GetNamespaceStats, ListNamespaceStats, Reload) through a real gRPC client
 * (Connect's gRPC protocol over HTTP/2), compared with the REST routes on the
 * same origin and namespaces, and their grants checked against REST's for the
 * same tokens.
 */
describe('namespace management over gRPC (real Redis)', () => {
  const issuer = hs256Issuer();
  let origin: RunningOrigin;
  let file: string;
  let admin: string;
  const ns = `grpcns${Date.now().toString(36)}`;

  beforeAll(async () => {
    file = join(await mkdtemp(join(tmpdir(), 'strata-grpc-reload-')), 'strata.env');
    await writeFile(file, 'MAX_VALUE_BYTES=1000\n');
    const base = {
      ORIGIN_PORT: '0',
      PURGE_LOG_KEY: ownPurgeLogKey(),
      REDIS_URL: inject('redisUrl'),
      STRATA_CONFIG_FILE: file,
      LOG_LEVEL: 'silent',
      ...issuer.env,
    };
    const config = parseConfig(originConfigSchema, await envWithConfigFile(base));
    origin = await startOrigin(config, { logger: pino({ level: 'silent' }), reloadEnv: () => envWithConfigFile(base) });
    admin = await issuer.sign({ serviceId: 'svc-ops' });
  });
  afterAll(async () => {
    await origin?.close();
    await issuer.close();
  });

  const rpc = (token?: string): Client<typeof CacheService> =>
    createClient(
      CacheService,
      createGrpcTransport({
        baseUrl: origin.url,
        interceptors: token
          ? [
              (next) => async (req) => {
                req.header.set('authorization', `Bearer ${token}`);
                return await next(req);
              },
            ]
          : [],
      }),
    );
  const rest = (path: string, token: string | undefined, init: RequestInit = {}) =>
    fetch(`${origin.url}${path}`, {
      ...init,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...init.headers },
    });
  const put = async (namespace: string, key: string, body = 'v') =>
    expect((await rest(`/api/v1/cache/${namespace}/${key}?ttl=300`, admin, { method: 'PUT', body })).status).toBe(200);
  const failure = async (call: Promise<unknown>) => {
    try {
      await call;
    } catch (error) {
      const e = ConnectError.from(error);
      return { code: e.code, icd: e.metadata.get('x-cache-error-code'), message: e.rawMessage };
    }
    return { code: 'ok' as const, icd: null, message: '' };
  };

  it('a gRPC flush is what REST sees: old entries gone, same version and history, and the reverse', async () => {
    await put(ns, 'a');
    await put(ns, 'b');
    const flushed = await rpc(admin).flushNamespace({ namespace: ns });
    expect(flushed).toMatchObject({ namespace: ns, serviceId: 'svc-ops' });
    expect(flushed.version).toBeGreaterThan(0n);
    expect((await rest(`/api/v1/cache/${ns}/a`, admin)).status).toBe(404);
    await put(ns, 'c');
    expect((await rest(`/api/v1/cache/${ns}/c`, admin)).status).toBe(200);

    const info = namespaceVersionInfoSchema.parse(await (await rest(`/api/v1/namespaces/${ns}`, admin)).json());
    expect(info.version).toBe(Number(flushed.version));
    expect(info.history[0]).toEqual({
      version: Number(flushed.version),
      flushed_at_ms: Number(flushed.flushedAtMs),
      service_id: 'svc-ops',
    });

    // REST flush → gRPC reads the new version and the whole history.
    const byRest = (await (await rest(`/api/v1/namespaces/${ns}/flush`, admin, { method: 'POST' })).json()) as {
      version: number;
    };
    const version = await rpc(admin).getNamespaceVersion({ namespace: ns });
    expect(Number(version.version)).toBe(byRest.version);
    const again = namespaceVersionInfoSchema.parse(await (await rest(`/api/v1/namespaces/${ns}`, admin)).json());
    expect(
      version.history.map((h) => ({
        version: Number(h.version),
        flushed_at_ms: Number(h.flushedAtMs),
        service_id: h.serviceId,
      })),
    ).toEqual(again.history);
    expect((await rest(`/api/v1/cache/${ns}/c`, admin)).status).toBe(404);
  });

  it('stats over gRPC equal the REST stats of the same namespace, one and all', async () => {
    const other = `${ns}s`;
    await put(other, 'x');
    await rest(`/api/v1/cache/${other}/x`, admin);
    await rest(`/api/v1/cache/${other}/missing`, admin);
    const viaRest = namespaceStatsSchema.parse(await (await rest(`/api/v1/namespaces/${other}/stats`, admin)).json());
    const viaRpc = await rpc(admin).getNamespaceStats({ namespace: other });
    const counters = (s: {
      namespace: string;
      version: number | bigint;
      hits: Record<string, number | bigint>;
      misses: number | bigint;
      writes: number | bigint;
      deletes: number | bigint;
    }) => ({
      namespace: s.namespace,
      version: Number(s.version),
      hits: Object.fromEntries(Object.entries(s.hits).map(([t, n]) => [t, Number(n)])),
      misses: Number(s.misses),
      writes: Number(s.writes),
      deletes: Number(s.deletes),
    });
    expect(counters(viaRpc.stats!)).toEqual(counters(viaRest));
    expect(viaRest).toMatchObject({ hits: { redis: 1 }, misses: 1, writes: 1, entries: null, bytes: null });
    expect(viaRpc.stats!.hitRatio).toEqual(viaRest.hit_ratio);
    expect(viaRpc.stats!.entries).toBeUndefined();
    expect(viaRpc.store!.kind).toBe('redis');
    expect(viaRpc.store!.memoryLimitBytes).toBe(
      viaRest.store.memory_limit_bytes === null ? undefined : BigInt(viaRest.store.memory_limit_bytes),
    );
    expect(viaRpc.store!.keys).toBeGreaterThan(0n);

    const all = await rpc(admin).listNamespaceStats({});
    const allRest = namespacesOverviewSchema.parse(await (await rest('/api/v1/namespaces', admin)).json());
    expect(all.namespaces.map((n) => n.namespace)).toEqual(allRest.namespaces.map((n) => n.namespace));
    expect(all.namespaces.map((n) => n.namespace)).toEqual(expect.arrayContaining([ns, other]));
    expect(counters(all.namespaces.find((n) => n.namespace === other)!)).toEqual(counters(viaRest));
  });

  it('Reload applies a valid file; an invalid one is INVALID_ARGUMENT (CACHE_004) naming the variable, the old limit stays', async () => {
    const big = new Uint8Array(1500);
    expect((await failure(rpc(admin).set({ namespace: ns, key: 'big', value: big }))).code).toBe(
      Code.ResourceExhausted,
    );
    await writeFile(file, 'MAX_VALUE_BYTES=2000\n');
    expect(await rpc(admin).reload({})).toMatchObject({ applied: ['MAX_VALUE_BYTES'], restartRequired: [] });
    expect((await rpc(admin).set({ namespace: ns, key: 'big', value: big })).success).toBe(true);

    await writeFile(file, 'MAX_VALUE_BYTES=-5\n');
    const refused = await failure(rpc(admin).reload({}));
    expect(refused).toMatchObject({ code: Code.InvalidArgument, icd: 'CACHE_004' });
    expect(refused.message).toMatch(/MAX_VALUE_BYTES/);
    expect(refused.message).not.toMatch(/\n/);
    expect(origin.service.settings.maxValueBytes).toBe(2000);
  });

  it('a bad namespace is INVALID_ARGUMENT (CACHE_004), as on REST', async () => {
    for (const call of [
      () => rpc(admin).flushNamespace({ namespace: 'Bad NS' }),
      () => rpc(admin).getNamespaceStats({ namespace: '' }),
      () => rpc(admin).getNamespaceVersion({ namespace: 'x'.repeat(65) }),
    ]) {
      expect(await failure(call())).toMatchObject({ code: Code.InvalidArgument, icd: 'CACHE_004' });
    }
  });

  // Each RPC beside its REST twin, for tokens with and without the grant.
  const pairs = [
    {
      name: 'FlushNamespace',
      rpc: (c: Client<typeof CacheService>) => c.flushNamespace({ namespace: ns }),
      rest: { path: () => `/api/v1/namespaces/${ns}/flush`, method: 'POST' },
    },
    {
      name: 'GetNamespaceVersion',
      rpc: (c: Client<typeof CacheService>) => c.getNamespaceVersion({ namespace: ns }),
      rest: { path: () => `/api/v1/namespaces/${ns}`, method: 'GET' },
    },
    {
      name: 'GetNamespaceStats',
      rpc: (c: Client<typeof CacheService>) => c.getNamespaceStats({ namespace: ns }),
      rest: { path: () => `/api/v1/namespaces/${ns}/stats`, method: 'GET' },
    },
    {
      name: 'ListNamespaceStats',
      rpc: (c: Client<typeof CacheService>) => c.listNamespaceStats({}),
      rest: { path: () => '/api/v1/namespaces', method: 'GET' },
    },
    {
      name: 'Reload',
      rpc: (c: Client<typeof CacheService>) => c.reload({}),
      rest: { path: () => '/api/v1/reload', method: 'POST' },
    },
  ];
  const tokens: { name: string; claims: TokenClaims | null; forged?: true }[] = [
    { name: 'no token', claims: null },
    { name: 'a forged token', claims: {}, forged: true },
    { name: 'every scope, every namespace', claims: {} },
    { name: 'every scope, another namespace', claims: { ns: ['elsewhere'] } },
    { name: 'every scope, this namespace', claims: { ns: [ns] } },
    { name: 'cache:flush only', claims: { scope: ['cache:flush'] } },
    { name: 'metrics:read in another namespace', claims: { scope: ['metrics:read'], ns: ['elsewhere'] } },
    { name: 'metrics:read in this namespace', claims: { scope: ['metrics:read'], ns: [ns] } },
    { name: 'cache:reload in this namespace', claims: { scope: ['cache:reload'], ns: [ns] } },
    { name: 'cache:reload everywhere', claims: { scope: ['cache:reload'] } },
    { name: 'cache:read and cache:delete', claims: { scope: ['cache:read', 'cache:delete'] } },
  ];
  const statusOf: Record<number, Code | 'ok'> = { 200: 'ok', 401: Code.Unauthenticated, 403: Code.PermissionDenied };

  it('each RPC is granted exactly as its REST route, for every token', async () => {
    await writeFile(file, 'MAX_VALUE_BYTES=2000\n');
    const outcomes: string[] = [];
    for (const token of tokens) {
      const jwt =
        token.claims === null
          ? undefined
          : token.forged
            ? await issuer.forge(token.claims)
            : await issuer.sign(token.claims);
      for (const pair of pairs) {
        const viaRest = await rest(pair.rest.path(), jwt, { method: pair.rest.method });
        await viaRest.arrayBuffer();
        const viaRpc = await failure(pair.rpc(rpc(jwt)));
        expect(statusOf[viaRest.status], `${pair.name} with ${token.name}: REST ${viaRest.status}`).toBeDefined();
        expect(viaRpc.code, `${pair.name} with ${token.name}`).toBe(statusOf[viaRest.status]);
        if (viaRpc.code !== 'ok') {
          expect(viaRpc.icd).toBe(viaRpc.code === Code.Unauthenticated ? 'AUTH_001' : 'AUTH_002');
        }
        outcomes.push(`${pair.name}/${token.name}: ${viaRpc.code === 'ok' ? 'ok' : Code[viaRpc.code]}`);
      }
    }
    // The grants the ICD names, spelled out once so the comparison above cannot pass with everything refused.
    expect(outcomes).toEqual(
      expect.arrayContaining([
        'FlushNamespace/cache:flush only: ok',
        'FlushNamespace/every scope, another namespace: PermissionDenied',
        'FlushNamespace/metrics:read in this namespace: PermissionDenied',
        'GetNamespaceStats/metrics:read in this namespace: ok',
        'GetNamespaceStats/metrics:read in another namespace: PermissionDenied',
        'ListNamespaceStats/metrics:read in another namespace: ok',
        'ListNamespaceStats/cache:flush only: PermissionDenied',
        'Reload/cache:reload everywhere: ok',
        'Reload/cache:reload in this namespace: PermissionDenied',
        'Reload/every scope, this namespace: PermissionDenied',
        'Reload/no token: Unauthenticated',
        'GetNamespaceVersion/a forged token: Unauthenticated',
      ]),
    );
  });
});
