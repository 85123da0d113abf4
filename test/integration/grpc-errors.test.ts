import { connect as http2Connect } from 'node:http2';
import { createServer } from 'node:net';
import { create, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CacheClient, CacheSource, createCacheClient, text } from '../../client/index.ts';
import { BatchSetRequestSchema } from '../../gen/strata/cache/v1/cache_pb.js';
import type { RunningOrigin } from '../../origin/server.ts';
import { type GrpcJsClient, grpcJsClient, grpcWebFrame, grpcWebTrailers } from '../support/grpc-clients.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/** gRPC status numbers, as grpc-js and the wire report them. */
const status = { deadlineExceeded: 4, invalidArgument: 3, resourceExhausted: 8, unavailable: 14 } as const;
const maxValueBytes = 4096;

async function connectError(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error('expected the call to fail');
}

async function grpcError(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error('expected the call to fail');
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('gRPC error mapping on a real origin (real Redis)', () => {
  let origin: RunningOrigin;
  let web: CacheClient;
  let gjs: GrpcJsClient;
  const ns = `grpcerr${Date.now().toString(36)}`;

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: inject('redisUrl'), MAX_VALUE_BYTES: String(maxValueBytes) });
    web = createCacheClient({ baseUrl: origin.url, namespace: ns, timeoutMs: 10_000 });
    gjs = grpcJsClient(origin.port);
  });
  afterAll(async () => {
    gjs?.close();
    await origin?.close();
  });

  const restCode = async (res: Response) => ({
    status: res.status,
    code: ((await res.json()) as { error: { code: string } }).error.code,
  });

  it('CACHE_004 → INVALID_ARGUMENT for every input REST rejects with 400, over gRPC-web and gRPC', async () => {
    const bad = [
      { namespace: 'Upper', key: 'k' },
      { namespace: ns, key: '' },
      { namespace: ns, key: 'tab\there' },
      { namespace: ns, key: 'x'.repeat(513) },
    ];
    for (const request of bad) {
      // An empty key has no REST path of its own; every other input is compared with REST.
      if (request.key !== '') {
        const viaRest = await fetch(
          `${origin.url}/api/v1/cache/${request.namespace}/${encodeURIComponent(request.key)}`,
        );
        expect(await restCode(viaRest)).toEqual({ status: 400, code: 'CACHE_004' });
      }
      const viaWeb = await connectError(web.rpc.get(request));
      expect(viaWeb.code).toBe(Code.InvalidArgument);
      expect(viaWeb.metadata.get('x-cache-error-code')).toBe('CACHE_004');
      const viaGrpc = await grpcError(gjs.call('Get', request));
      expect(viaGrpc.code).toBe(status.invalidArgument);
      expect(viaGrpc.metadata.get('x-cache-error-code')).toEqual(['CACHE_004']);
    }
    const invalidWrites = [
      web.rpc.set({ namespace: ns, key: 'k', value: new Uint8Array(1), ttlSeconds: -1n }),
      web.rpc.set({ namespace: ns, key: 'k', value: new Uint8Array(1), ttlSeconds: 400n * 24n * 3600n }),
      web.rpc.set({ namespace: ns, key: 'k', value: new Uint8Array(1), tags: ['no spaces'] }),
      web.rpc.set({ namespace: ns, key: 'k', value: new Uint8Array(1), encrypt: true }),
      web.rpc.batchGet({ namespace: ns, keys: [] }),
      web.rpc.batchSet({ namespace: ns, entries: {} }),
      web.rpc.purge({ namespace: ns }),
    ];
    for (const call of invalidWrites) expect((await connectError(call)).code).toBe(Code.InvalidArgument);
  });

  it('CACHE_003 → RESOURCE_EXHAUSTED for a value over MAX_VALUE_BYTES, exactly where REST answers 413', async () => {
    const atLimit = new Uint8Array(maxValueBytes).fill(97);
    const over = new Uint8Array(maxValueBytes + 1).fill(97);
    const put = (body: Uint8Array) =>
      fetch(`${origin.url}/api/v1/cache/${ns}/big`, { method: 'PUT', body: body as Uint8Array<ArrayBuffer> });
    expect((await put(atLimit)).status).toBe(200);
    expect(await restCode(await put(over))).toEqual({ status: 413, code: 'CACHE_003' });

    expect((await web.set('big', atLimit)).version).toBeGreaterThan(0);
    const viaWeb = await connectError(web.set('big', over));
    expect(viaWeb.code).toBe(Code.ResourceExhausted);
    expect(viaWeb.metadata.get('x-cache-error-code')).toBe('CACHE_003');
    const viaGrpc = await grpcError(gjs.call('Set', { namespace: ns, key: 'big', value: Buffer.from(over) }));
    expect(viaGrpc.code).toBe(status.resourceExhausted);
    const batch = await connectError(web.setMany({ small: 'x', big: over }));
    expect(batch.code).toBe(Code.ResourceExhausted);
    expect(await web.get('small')).toBeNull();
  });

  it('an oversized message (over the 8 MiB request limit) is RESOURCE_EXHAUSTED and the server keeps serving', async () => {
    const huge = Buffer.alloc(9 * 1024 * 1024, 1);
    const viaGrpc = await grpcError(gjs.call('Set', { namespace: ns, key: 'huge', value: huge }));
    expect(viaGrpc.code).toBe(status.resourceExhausted);
    expect((await web.set('after-huge', 'ok')).version).toBeGreaterThan(0);
  });

  it('DEADLINE_EXCEEDED: a 1 ms deadline on a BatchSet of 1000 entries fails over gRPC, gRPC-web and a raw request', async () => {
    const entries: Record<string, Buffer> = {};
    for (let i = 0; i < 1000; i++) entries[`slow:${i}`] = Buffer.alloc(2048, i % 256);
    const viaGrpc = await grpcError(gjs.call('BatchSet', { namespace: ns, entries }, 1));
    expect(viaGrpc.code).toBe(status.deadlineExceeded);
    const viaWeb = await connectError(web.setMany(entries, { timeoutMs: 1 }));
    expect(viaWeb.code).toBe(Code.DeadlineExceeded);

    // The clients above may give up on their own; a raw gRPC-web request without a client timer
    // proves the server itself answers the `grpc-timeout` it was sent.
    const body = toBinary(BatchSetRequestSchema, create(BatchSetRequestSchema, { namespace: ns, entries }));
    const res = await fetch(`${origin.url}/strata.cache.v1.CacheService/BatchSet`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/grpc-web+proto', 'X-Grpc-Web': '1', 'grpc-timeout': '1m' },
      body: grpcWebFrame(body) as Uint8Array<ArrayBuffer>,
    });
    expect(res.status).toBe(200);
    const trailers = grpcWebTrailers(new Uint8Array(await res.arrayBuffer()));
    const headerStatus = res.headers.get('grpc-status');
    expect(headerStatus ?? trailers.get('grpc-status')).toBe(String(status.deadlineExceeded));
    expect((await web.health()).healthy).toBe(true);
  });

  it('a malformed protobuf body is INVALID_ARGUMENT in gRPC-web, gRPC and Connect, and the server keeps serving', async () => {
    // Field 1 (key, length-delimited) claims 100 bytes but carries 2.
    const truncated = new Uint8Array([0x0a, 0x64, 0x61, 0x62]);
    const url = `${origin.url}/strata.cache.v1.CacheService/Get`;

    const webRes = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/grpc-web+proto', 'X-Grpc-Web': '1' },
      body: grpcWebFrame(truncated) as Uint8Array<ArrayBuffer>,
    });
    const trailers = grpcWebTrailers(new Uint8Array(await webRes.arrayBuffer()));
    expect(webRes.headers.get('grpc-status') ?? trailers.get('grpc-status')).toBe(String(status.invalidArgument));

    const connectRes = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/proto', 'Connect-Protocol-Version': '1' },
      body: truncated,
    });
    expect(connectRes.status).toBe(400);
    expect(((await connectRes.json()) as { code: string }).code).toBe('invalid_argument');

    const session = http2Connect(origin.url);
    try {
      const grpcStatus = await new Promise<string | undefined>((resolve, reject) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/strata.cache.v1.CacheService/Get',
          'content-type': 'application/grpc+proto',
          te: 'trailers',
        });
        let fromHeaders: string | undefined;
        stream.on('response', (h) => {
          fromHeaders = h['grpc-status'] as string | undefined;
        });
        stream.on('trailers', (t) => resolve(t['grpc-status'] as string));
        stream.on('end', () => resolve(fromHeaders));
        stream.on('error', reject);
        stream.resume();
        stream.end(Buffer.from(grpcWebFrame(truncated)));
      });
      expect(grpcStatus).toBe(String(status.invalidArgument));
    } finally {
      session.close();
    }

    await web.set('still-serving', 'yes');
    const entry = await web.get('still-serving');
    expect(entry && text(entry)).toBe('yes');
    expect((await gjs.call('Get', { namespace: ns, key: 'still-serving' })).message).toMatchObject({ found: true });
  });

  it('CACHE_001/CACHE_002 (NOT_FOUND) are not errors on this API: a missing or expired key is found=false', async () => {
    await web.set('short', 'x', { ttlSeconds: 1 });
    await eventually('the 1 s entry expires', async () => (await web.get('short')) === null, 10_000, 100);
    expect((await gjs.call('Get', { namespace: ns, key: 'short' })).message).toMatchObject({ found: false });
  });
});

describe('gRPC on an origin whose Redis is down (closed port, behind the breaker)', () => {
  let origin: RunningOrigin;
  let web: CacheClient;
  let gjs: GrpcJsClient;
  const ns = 'down';

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: `redis://127.0.0.1:${await closedPort()}`, REDIS_CALL_TIMEOUT_MS: '100' });
    web = createCacheClient({ baseUrl: origin.url, namespace: ns, timeoutMs: 10_000 });
    gjs = grpcJsClient(origin.port);
  });
  afterAll(async () => {
    gjs?.close();
    await origin?.close();
  });

  it('CACHE_005 → UNAVAILABLE for a key only Redis could answer, as REST answers 503', async () => {
    const viaRest = await fetch(`${origin.url}/api/v1/cache/${ns}/unknown`);
    expect(viaRest.status).toBe(503);
    expect(((await viaRest.json()) as { error: { code: string } }).error.code).toBe('CACHE_005');
    const viaWeb = await connectError(web.get('unknown'));
    expect(viaWeb.code).toBe(Code.Unavailable);
    expect(viaWeb.metadata.get('x-cache-error-code')).toBe('CACHE_005');
    expect((await grpcError(gjs.call('Get', { namespace: ns, key: 'unknown' }))).code).toBe(status.unavailable);
  });

  it('a write accepted only by the local tier, and the read it allows, carry x-cache-degraded: 1 like REST', async () => {
    const written = await web.set('local', 'kept locally');
    expect(written.degraded).toBe(true);
    const read = await web.get('local');
    expect(read && text(read)).toBe('kept locally');
    expect(read).toMatchObject({ degraded: true, source: CacheSource.LOCAL });
    const viaGrpc = await gjs.call('Get', { namespace: ns, key: 'local' });
    expect(viaGrpc.header.get('x-cache-degraded')).toEqual(['1']);
    const viaRest = await fetch(`${origin.url}/api/v1/cache/${ns}/local`);
    expect(viaRest.headers.get('X-Cache-Degraded')).toBe('1');
    expect(await viaRest.text()).toBe('kept locally');
    expect(await web.health()).toMatchObject({ healthy: false, redisStatus: 'down' });
  });

  it('a miss that rests on a delete accepted only by the local tier is found=false with x-cache-degraded: 1, like REST', async () => {
    await web.set('gone', 'about to go');
    const deleted = await fetch(`${origin.url}/api/v1/cache/${ns}/gone`, { method: 'DELETE' });
    expect(deleted.headers.get('X-Cache-Degraded')).toBe('1');
    const viaGrpc = await gjs.call('Get', { namespace: ns, key: 'gone' });
    expect(viaGrpc.message).toMatchObject({ found: false });
    expect(viaGrpc.header.get('x-cache-degraded')).toEqual(['1']);
    const viaRest = await fetch(`${origin.url}/api/v1/cache/${ns}/gone`);
    expect(viaRest.status).toBe(404);
    expect(viaRest.headers.get('X-Cache-Degraded')).toBe('1');
  });
});
