import { connect } from 'node:net';
import { create, type DescMessage, fromBinary, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  BatchGetRequestSchema,
  BatchGetResponseSchema,
  DeleteRequestSchema,
  DeleteResponseSchema,
  GetRequestSchema,
  GetResponseSchema,
  HealthRequestSchema,
  SetRequestSchema,
  SetResponseSchema,
} from '../../gen/strata/cache/v1/cache_pb.js';
import type { RunningOrigin } from '../../origin/server.ts';
import { grpcWebFrame, grpcWebTrailers } from '../support/grpc-clients.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { originFor } from '../support/stack.ts';

/** One HTTP/1.1 answer as it came off the wire. */
interface Wire {
  /** Status line and header lines, in order, without `Date`. */
  readonly head: readonly string[];
  /** The body with the chunked framing removed. */
  readonly body: Buffer;
  /** Chunks of the chunked body (the fast path writes one, Connect one per frame). */
  readonly chunks: number;
}

/** POSTs `body` on a fresh connection and reads the raw answer until the server closes it. */
async function post(port: number, path: string, headers: Record<string, string>, body: Uint8Array): Promise<Wire> {
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk) => received.push(chunk));
    // The server may close before taking all of an oversized body; the answer is already read by then.
    socket.on('error', (error) => (received.length > 0 ? resolve(Buffer.concat(received)) : reject(error)));
    socket.on('close', () => resolve(Buffer.concat(received)));
    const lines = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    lines.push(`Content-Length: ${body.byteLength}`, '', '');
    socket.write(lines.join('\r\n'));
    socket.write(body);
  });
  const split = raw.indexOf('\r\n\r\n');
  const head = raw
    .subarray(0, split)
    .toString('latin1')
    .split('\r\n')
    .filter((line) => !/^date:/i.test(line));
  let rest = raw.subarray(split + 4);
  if (!head.some((line) => /^transfer-encoding:\s*chunked$/i.test(line))) return { head, body: rest, chunks: 0 };
  const parts: Buffer[] = [];
  for (;;) {
    const end = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.subarray(0, end).toString('latin1'), 16);
    if (size === 0) break;
    parts.push(rest.subarray(end + 2, end + 2 + size));
    rest = rest.subarray(end + 2 + size + 2);
  }
  return { head, body: Buffer.concat(parts), chunks: parts.length };
}

const rpc = (method: string) => `/strata.cache.v1.CacheService/${method}`;
const grpcWeb = { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' };

function message<T extends DescMessage>(schema: T, init: MessageInitShape<T>): Uint8Array {
  return grpcWebFrame(toBinary(schema, create(schema, init)));
}

/** The one message of a gRPC-web answer, decoded. */
function reply<T extends DescMessage>(schema: T, body: Buffer) {
  expect(body[0]).toBe(0);
  return fromBinary(schema, body.subarray(5, 5 + body.readUInt32BE(1)));
}

describe('unary gRPC-web fast path: the same bytes as Connect (real Redis, auth on)', () => {
  let issuer: TokenIssuer;
  let fast: RunningOrigin;
  let viaConnect: RunningOrigin;
  let token: string;
  const ns = `fastrpc${Date.now().toString(36)}`;
  const value = Buffer.alloc(1024, 7);

  beforeAll(async () => {
    issuer = hs256Issuer();
    // Two origins on one Redis: the same entries, one answering through the fast path, one through Connect only.
    const env = { REDIS_URL: inject('redisUrl'), MAX_VALUE_BYTES: '4096', ...issuer.env };
    fast = await originFor(env);
    viaConnect = await originFor({ ...env, GRPC_UNARY_FAST_PATH: 'false' });
    token = await issuer.sign({ ns: [ns] });
    const put = await fetch(`${fast.url}/api/v1/cache/${ns}/hot?ttl=3600`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: value,
    });
    expect(put.ok).toBe(true);
  });
  afterAll(async () => {
    await fast?.close();
    await viaConnect?.close();
    await issuer?.close();
  });

  /** The same call on the fast origin, then on the Connect-only one; the status and headers but Date must match. */
  async function pair(method: string, body: Uint8Array, headers: Record<string, string> = {}) {
    const all = { ...grpcWeb, authorization: `Bearer ${token}`, ...headers };
    const [a, b] = [await post(fast.port, rpc(method), all, body), await post(viaConnect.port, rpc(method), all, body)];
    expect(a.head).toEqual(b.head);
    return { fast: a, connect: b, trailers: grpcWebTrailers(a.body) };
  }

  /** {@link pair}, and the bodies match byte for byte. */
  async function both(method: string, body: Uint8Array, headers: Record<string, string> = {}) {
    const answers = await pair(method, body, headers);
    expect(answers.fast.body.toString('hex')).toBe(answers.connect.body.toString('hex'));
    return answers;
  }

  /** The trailers frame that follows the message frame. */
  const trailerOf = (w: Wire) => w.body.subarray(5 + w.body.readUInt32BE(1)).toString('hex');

  /**
   * {@link both} for an answer that carries an entry's `age_seconds` (a `Get`
   * hit, `BatchGet`). The age is read from the clock at each call, so two
   * calls a few ms apart can straddle a second of the entry's age; then the
   * bodies must match once the second answer carries the first one's ages
   * (the rest of the message, its framing and the trailers byte for byte).
   */
  async function bothAged(method: 'Get' | 'BatchGet', body: Uint8Array, headers: Record<string, string> = {}) {
    const answers = await pair(method, body, headers);
    const { fast: a, connect: b } = answers;
    if (!a.body.equals(b.body)) {
      let reframed: Uint8Array;
      if (method === 'Get') {
        const [gotA, gotB] = [reply(GetResponseSchema, a.body), reply(GetResponseSchema, b.body)];
        expect(gotB.ageSeconds - gotA.ageSeconds).toBe(1n);
        gotB.ageSeconds = gotA.ageSeconds;
        reframed = grpcWebFrame(toBinary(GetResponseSchema, gotB));
      } else {
        const [gotA, gotB] = [reply(BatchGetResponseSchema, a.body), reply(BatchGetResponseSchema, b.body)];
        for (const [key, entry] of Object.entries(gotB.entries)) {
          const first = gotA.entries[key]!;
          expect(entry.ageSeconds - first.ageSeconds).toBeLessThanOrEqual(1n);
          entry.ageSeconds = first.ageSeconds;
        }
        reframed = grpcWebFrame(toBinary(BatchGetResponseSchema, gotB));
      }
      expect(a.body.subarray(0, 5 + a.body.readUInt32BE(1)).toString('hex')).toBe(
        Buffer.from(reframed).toString('hex'),
      );
      expect(trailerOf(a)).toBe(trailerOf(b));
    }
    return answers;
  }

  it('Get hit: the value, its metadata and grpc-status 0, from one write on the fast path', async () => {
    const {
      fast: a,
      connect: b,
      trailers,
    } = await bothAged('Get', message(GetRequestSchema, { namespace: ns, key: 'hot' }));
    expect(a.head[0]).toBe('HTTP/1.1 200 OK');
    expect(a.head).toContain('content-type: application/grpc-web+proto');
    const got = reply(GetResponseSchema, a.body);
    expect(got.found).toBe(true);
    expect(Buffer.from(got.value).equals(value)).toBe(true);
    expect(trailers.get('grpc-status')).toBe('0');
    // Connect writes each frame as it comes; the fast path writes the answer at once.
    expect([a.chunks, b.chunks]).toEqual([1, 2]);
  });

  it('the plain application/grpc-web content type answers the same', async () => {
    const { fast: a, connect: b } = await bothAged('Get', message(GetRequestSchema, { namespace: ns, key: 'hot' }), {
      'content-type': 'application/grpc-web',
    });
    expect(reply(GetResponseSchema, a.body).found).toBe(true);
    expect([a.chunks, b.chunks]).toEqual([1, 2]);
  });

  it('Get miss, BatchGet, Delete of a missing key and Health', async () => {
    const miss = await both('Get', message(GetRequestSchema, { namespace: ns, key: 'never-written' }));
    expect(reply(GetResponseSchema, miss.fast.body).found).toBe(false);
    expect(miss.fast.chunks).toBe(1);
    const batch = await bothAged('BatchGet', message(BatchGetRequestSchema, { namespace: ns, keys: ['hot', 'cold'] }));
    expect(batch.trailers.get('grpc-status')).toBe('0');
    expect(batch.fast.chunks).toBe(1);
    // A delete answers the key's new version (a clock reading), which differs between the two calls.
    const del = await pair('Delete', message(DeleteRequestSchema, { namespace: ns, key: 'never-written' }));
    expect(trailerOf(del.fast)).toBe(trailerOf(del.connect));
    expect(reply(DeleteResponseSchema, del.fast.body).deleted).toBe(false);
    expect(reply(DeleteResponseSchema, del.connect.body).deleted).toBe(false);
    expect(del.trailers.get('grpc-status')).toBe('0');
    const health = await both('Health', message(HealthRequestSchema, {}));
    expect(health.trailers.get('grpc-status')).toBe('0');
  });

  it('Set: the same headers and trailers; the message differs only in version and expiry', async () => {
    const { fast: a, connect: b } = await pair(
      'Set',
      message(SetRequestSchema, { namespace: ns, key: 'written', value, ttlSeconds: 60n }),
    );
    const [setA, setB] = [reply(SetResponseSchema, a.body), reply(SetResponseSchema, b.body)];
    expect(setA.success && setB.success).toBe(true);
    expect(setB.version).toBeGreaterThan(setA.version);
    expect(trailerOf(a)).toBe(trailerOf(b));
    expect(a.chunks).toBe(1);
  });

  it.each([
    ['INVALID_ARGUMENT (bad key)', { key: 'tab\there' }, {}, '3', 'CACHE_004'],
    ['INVALID_ARGUMENT (key too long)', { key: 'x'.repeat(513) }, {}, '3', 'CACHE_004'],
    ['UNAUTHENTICATED (no token)', {}, { authorization: '' }, '16', 'AUTH_001'],
    ['UNAUTHENTICATED (forged token)', {}, { forged: 'yes' }, '16', 'AUTH_001'],
    ['PERMISSION_DENIED (another namespace)', { namespace: 'elsewhere' }, {}, '7', 'AUTH_002'],
    ['DEADLINE_EXCEEDED (grpc-timeout 0)', {}, { 'grpc-timeout': '0m' }, '4', undefined],
  ])('%s', async (_name, fields, extra: Record<string, string>, status, errorCode) => {
    const headers: Record<string, string> = { ...extra };
    if (extra.forged) {
      delete headers.forged;
      headers.authorization = `Bearer ${await issuer.forge({ ns: [ns] })}`;
    }
    if (headers.authorization === '') headers.authorization = 'Basic nothing';
    const { fast: a, trailers } = await both(
      'Get',
      message(GetRequestSchema, { namespace: ns, key: 'hot', ...fields }),
      headers,
    );
    expect(a.head[0]).toBe('HTTP/1.1 200 OK');
    expect(trailers.get('grpc-status')).toBe(status);
    expect(trailers.get('x-cache-error-code')).toBe(errorCode);
    expect(trailers.get('grpc-message')).toMatch(/^\S+$/); // percent-encoded: no spaces
  });

  const get = () => toBinary(GetRequestSchema, create(GetRequestSchema, { namespace: ns, key: 'hot' }));
  const envelope = (flags: number, length: number, data: Uint8Array) => {
    const out = Buffer.alloc(5 + data.byteLength);
    out[0] = flags;
    out.writeUInt32BE(length, 1);
    out.set(data, 5);
    return out;
  };

  it.each([
    ['a length that overruns the body', () => envelope(0, 100, get()), '3'],
    [
      'a length shorter than the body (trailing bytes)',
      () => Buffer.concat([grpcWebFrame(get()), Buffer.from([1, 2])]),
      '3',
    ],
    ['two messages for a unary method', () => Buffer.concat([grpcWebFrame(get()), grpcWebFrame(get())]), '12'],
    ['the compressed flag without grpc-encoding', () => envelope(1, get().byteLength, get()), undefined],
    ['a message that does not decode', () => envelope(0, 3, new Uint8Array([0xff, 0xff, 0xff])), '3'],
    ['an empty body', () => new Uint8Array(0), undefined],
  ])('malformed: %s gets Connect’s answer', async (_name, body, status) => {
    const { trailers } = await both('Get', body());
    expect(trailers.get('grpc-status')).not.toBe('0');
    if (status) expect(trailers.get('grpc-status')).toBe(status);
  });

  it('an oversized body (over the 8 MiB message limit) gets Connect’s RESOURCE_EXHAUSTED', async () => {
    const huge = message(SetRequestSchema, { namespace: ns, key: 'huge', value: Buffer.alloc(9 * 1024 * 1024, 1) });
    const { trailers } = await both('Set', huge);
    expect(trailers.get('grpc-status')).toBe('8');
  });

  it('calls the fast path leaves to Connect answer as before', async () => {
    // A miss: no age in the answer, so the two calls cannot differ by the clock.
    const body = message(GetRequestSchema, { namespace: ns, key: 'never-written' });
    // Response compression offered, an invalid timeout, gRPC-web text, the Connect protocol.
    const gzip = await both('Get', body, { 'grpc-accept-encoding': 'gzip' });
    expect(gzip.trailers.get('grpc-status')).toBe('0');
    const badTimeout = await both('Get', body, { 'grpc-timeout': 'soon' });
    expect(badTimeout.trailers.get('grpc-status')).toBe('3');
    const text = await both('Get', Buffer.from(Buffer.from(body).toString('base64')), {
      'content-type': 'application/grpc-web-text',
    });
    expect(text.fast.head[0]).toBe('HTTP/1.1 415 Unsupported Media Type');
    const connectProto = await both(
      'Get',
      toBinary(GetRequestSchema, create(GetRequestSchema, { namespace: ns, key: 'never-written' })),
      {
        'content-type': 'application/proto',
      },
    );
    expect(connectProto.fast.head[0]).toBe('HTTP/1.1 200 OK');
    expect(fromBinary(GetResponseSchema, connectProto.fast.body).found).toBe(false);
    for (const call of [gzip, badTimeout, connectProto]) expect(call.fast.chunks).toBe(call.connect.chunks);
  });
});
