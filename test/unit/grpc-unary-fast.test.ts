import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CacheService,
  type GetRequest,
  GetRequestSchema,
  GetResponseSchema,
} from '../../gen/strata/cache/v1/cache_pb.js';
import { createUnaryFastPath } from '../../origin/grpc/unary-fast.ts';

/** What the fallback received, per request. */
const fellBack: Buffer[] = [];
const headersSeen: (string | null)[] = [];

/** A stand-in implementation: found for key `hit`, INVALID_ARGUMENT for `bad`; waits for `slow` until aborted. */
const impl = {
  get: async (req: GetRequest, ctx: { signal: AbortSignal; responseHeader: Headers }) => {
    if (req.key === 'bad')
      throw new ConnectError('bad key', Code.InvalidArgument, { 'x-cache-error-code': 'CACHE_004' });
    if (req.key === 'slow') {
      await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    }
    ctx.responseHeader.set('x-cache-degraded', '1');
    return { found: req.key === 'hit', value: new Uint8Array([1, 2, 3]) };
  },
};
const seeHeader: Interceptor = (next) => async (req) => {
  headersSeen.push(req.header.get('x-probe'));
  return await next(req);
};

const fast = createUnaryFastPath({
  service: CacheService,
  impl,
  interceptors: [seeHeader],
  readMaxBytes: 64,
  fallback: (_req, res, body) => {
    void (async () => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of body) chunks.push(chunk);
      fellBack.push(Buffer.concat(chunks));
      res.writeHead(299).end();
    })();
  },
});

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!fast(req, res)) res.writeHead(298).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/strata.cache.v1.CacheService`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function frame(flags: number, message: Uint8Array, length = message.byteLength): Buffer<ArrayBuffer> {
  const out = Buffer.alloc(5 + message.byteLength);
  out[0] = flags;
  out.writeUInt32BE(length, 1);
  out.set(message, 5);
  return out;
}
const get = (key: string) => toBinary(GetRequestSchema, create(GetRequestSchema, { namespace: 'ns', key }));
const grpcWeb = { 'content-type': 'application/grpc-web+proto' };

async function call(path: string, body: Uint8Array<ArrayBuffer>, headers: Record<string, string> = grpcWeb) {
  const res = await fetch(`${url}/${path}`, { method: 'POST', headers, body });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

describe('unary gRPC-web fast path: what it takes', () => {
  it('answers a unary call itself: message frame, then the trailers frame; headers the call set go out', async () => {
    const res = await call('Get', frame(0, get('hit')), { ...grpcWeb, 'x-probe': 'seen' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/grpc-web+proto');
    expect(res.headers.get('x-cache-degraded')).toBe('1');
    const length = res.body.readUInt32BE(1);
    expect(res.body[0]).toBe(0);
    expect(fromBinary(GetResponseSchema, res.body.subarray(5, 5 + length)).found).toBe(true);
    const trailer = res.body.subarray(5 + length);
    expect(trailer[0]).toBe(0x80);
    expect(trailer.subarray(5).toString()).toBe('grpc-status: 0\r\n');
    // The interceptors see the request's headers.
    expect(headersSeen.at(-1)).toBe('seen');
  });

  it('reads a body that arrives in pieces, the envelope header split across them', async () => {
    const body = frame(0, get('hit'));
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const req = request(`${url}/Get`, { method: 'POST', headers: grpcWeb }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve(Buffer.concat(parts)));
      });
      req.on('error', reject);
      void (async () => {
        for (const [from, to] of [
          [0, 3],
          [3, 7],
          [7, body.byteLength],
        ] as const) {
          req.write(body.subarray(from, to));
          await new Promise((r) => setTimeout(r, 20));
        }
        req.end();
      })();
    });
    expect(answer[0]).toBe(0);
    expect(fromBinary(GetResponseSchema, answer.subarray(5, 5 + answer.readUInt32BE(1))).found).toBe(true);
  });

  it('answers an error with the trailers frame alone: status, percent-encoded message, the error’s metadata', async () => {
    const res = await call('Get', frame(0, get('bad')));
    expect(res.status).toBe(200);
    expect(res.body[0]).toBe(0x80);
    expect(res.body.subarray(5).toString()).toBe(
      'grpc-message: bad%20key\r\ngrpc-status: 3\r\nx-cache-error-code: CACHE_004\r\n',
    );
  });

  it('aborts the call at its grpc-timeout with DEADLINE_EXCEEDED', async () => {
    const res = await call('Get', frame(0, get('slow')), { ...grpcWeb, 'grpc-timeout': '50m' });
    expect(res.body.subarray(5).toString()).toContain('grpc-status: 4\r\n');
    expect(res.body.subarray(5).toString()).toContain('grpc-message: the%20operation%20timed%20out');
  });

  it.each([
    ['a compressed envelope', frame(1, get('hit'))],
    ['a length that overruns the body', frame(0, get('hit'), 99)],
    ['trailing bytes', Buffer.concat([frame(0, get('hit')), Buffer.from([0])])],
    ['a message that does not decode', frame(0, new Uint8Array([0xff, 0xff]))],
    ['an empty body', Buffer.alloc(0)],
    ['a body over readMaxBytes + 5', frame(0, new Uint8Array(500).fill(0x0a))],
  ])('hands %s to the fallback with every byte', async (_name, body) => {
    const before = fellBack.length;
    const res = await call('Get', body);
    expect(res.status).toBe(299);
    expect(fellBack.length).toBe(before + 1);
    expect(fellBack.at(-1)!.equals(body)).toBe(true);
  });

  it.each([
    ['gRPC-web text', { 'content-type': 'application/grpc-web-text' }],
    ['gRPC-web JSON', { 'content-type': 'application/grpc-web+json' }],
    ['the Connect protocol', { 'content-type': 'application/proto' }],
    ['a compressed request', { ...grpcWeb, 'grpc-encoding': 'gzip' }],
    ['an answer that could be compressed', { ...grpcWeb, 'grpc-accept-encoding': 'gzip' }],
    ['an invalid grpc-timeout', { ...grpcWeb, 'grpc-timeout': '1x' }],
  ])('leaves %s to Connect, unread', async (_name, headers) => {
    expect((await call('Get', frame(0, get('hit')), headers)).status).toBe(298);
  });

  it('leaves unknown methods and other paths to Connect', async () => {
    expect((await call('NoSuchMethod', frame(0, get('hit')))).status).toBe(298);
    const res = await fetch(`${url}/Get`, { headers: grpcWeb });
    expect(res.status).toBe(298);
  });
});
