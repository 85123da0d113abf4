import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { undiciOriginTransport } from '../../edge/adapters/node/origin-transport.ts';
import { OriginClient } from '../../edge/origin-client.ts';
import { fetchTransport, type OriginTransport } from '../../edge/origin-transport.ts';
import { CacheError } from '../../shared/errors.ts';

// A stand-in origin for the transport alone: it answers fixed shapes, so both transports see the same bytes.
const value = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7) & 0xff);
const received: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }> = [];

function answer(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
  const path = req.url ?? '';
  if (path.endsWith('/hang')) return; // never answers: the time limit must fire
  if (path.endsWith('/stall-body')) {
    res.writeHead(200, { 'Content-Length': '10' });
    res.write('12345'); // half the body, then nothing
    return;
  }
  if (path.endsWith('/miss')) {
    res.writeHead(404, { 'Content-Type': 'application/json', 'X-Cache-Lease': 'lease-1' });
    res.end('{"error":{"code":"CACHE_001","message":"Key not found"}}');
    return;
  }
  if (path.endsWith('/bad')) {
    res.writeHead(400, { 'Content-Type': 'application/json' });
    res.end('{"error":{"code":"CACHE_004","message":"Invalid key format","details":{"key":"bad"}}}');
    return;
  }
  if (path.endsWith('/garbled')) {
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end('upstream went away');
    return;
  }
  if (path.endsWith('/not-modified')) {
    res.writeHead(304);
    res.end();
    return;
  }
  if (req.method === 'PUT') {
    res.writeHead(200, { 'Content-Type': 'application/json', 'X-Cache-Degraded': '1' });
    res.end(JSON.stringify({ version: 3, expires_at_ms: 5_000, bytes: body.byteLength }));
    return;
  }
  const entry = {
    'Content-Type': 'application/x-test',
    'X-Cache-Version': '7',
    'X-Cache-Created-At': '1000',
    'X-Cache-Expires-At': '90000',
    'Cache-Tag': 'a,b',
    'X-Cache-Tier': 'memory',
    'X-Cache': 'STALE',
    'X-Cache-Stale-Reason': 'revalidating',
    'X-Cache-Consistency': 'strong',
  };
  if (path.endsWith('/chunked')) {
    // No Content-Length: chunked transfer coding, several writes.
    res.writeHead(200, entry);
    for (let at = 0; at < value.byteLength; at += 30_000) res.write(value.subarray(at, at + 30_000));
    res.end();
    return;
  }
  res.writeHead(200, { ...entry, 'Content-Length': String(value.byteLength) });
  res.end(value);
}

let server: Server;
let base: string;
const closedBase = 'http://127.0.0.1:9'; // discard port: nothing listens on loopback

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, res, Buffer.concat(chunks)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const transports: Array<[string, () => OriginTransport]> = [
  ['fetch', () => fetchTransport()],
  ['undici request', () => undiciOriginTransport()],
];

const client = (transport: OriginTransport, over: { baseUrl?: string; timeoutMs?: number } = {}) =>
  new OriginClient({
    baseUrl: over.baseUrl ?? base,
    timeoutMs: over.timeoutMs ?? 2_000,
    token: 'edge-token',
    transport,
    tracing: false,
    now: () => 50_000,
  });

async function failure(call: Promise<unknown>): Promise<CacheError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CacheError);
  return error as CacheError;
}

describe.each(transports)('origin client over the %s transport', (_name, make) => {
  it('reads an entry with a Content-Length into one whole buffer and maps every header', async () => {
    const read = await client(make()).get('ns', 'k', 'req-1');
    expect(read && 'value' in read).toBe(true);
    if (!read || !('value' in read)) return;
    expect(Buffer.from(read.value).equals(Buffer.from(value))).toBe(true);
    expect(read).toMatchObject({
      contentType: 'application/x-test',
      version: 7,
      createdAtMs: 1000,
      expiresAtMs: 90_000,
      tags: ['a', 'b'],
      tier: 'memory',
      status: 'STALE',
      staleReason: 'revalidating',
      strong: true,
      degraded: false,
    });
    const sent = received.at(-1)!;
    expect(sent.headers.authorization).toBe('Bearer edge-token');
    expect(sent.headers['x-request-id']).toBe('req-1');
  });

  it('reads a chunked body (no Content-Length) whole', async () => {
    const read = await client(make()).get('ns', 'chunked');
    expect(read && 'value' in read && Buffer.from(read.value).equals(Buffer.from(value))).toBe(true);
  });

  it('gives the lease of a miss, not-modified on 304, and the origin error envelope as the same CacheError', async () => {
    const c = client(make());
    expect(await c.get('ns', 'miss')).toEqual({ miss: true, lease: 'lease-1' });
    expect(await c.revalidate('ns', 'not-modified', 7)).toBe('not-modified');
    expect(received.at(-1)!.headers['if-none-match']).toBe('"v7"');
    const bad = await failure(c.get('ns', 'bad'));
    expect([bad.code, bad.status, bad.details]).toEqual(['CACHE_004', 400, { key: 'bad' }]);
    const garbled = await failure(c.get('ns', 'garbled'));
    expect([garbled.code, garbled.status, garbled.message]).toEqual(['CACHE_005', 503, 'Origin answered HTTP 502']);
  });

  it('sends a PUT body byte for byte and reads the answer', async () => {
    const answerOf = await client(make()).send('PUT', '/api/v1/cache/ns/k', { 'Content-Type': 'x/y' }, value);
    expect(answerOf.status).toBe(200);
    expect(answerOf.header('x-cache-degraded')).toBe('1');
    expect(answerOf.header('X-Cache-Degraded')).toBe('1');
    expect(answerOf.header('X-Absent')).toBeNull();
    expect(JSON.parse(new TextDecoder().decode(answerOf.body))).toEqual({
      version: 3,
      expires_at_ms: 5000,
      bytes: value.byteLength,
    });
    const sent = received.at(-1)!;
    expect([sent.method, sent.headers['content-type']]).toEqual(['PUT', 'x/y']);
    expect(sent.body.equals(Buffer.from(value))).toBe(true);
  });

  it('maps an unreachable origin to CACHE_005 503 and a time-out (headers or body) to CACHE_005 504', async () => {
    const down = await failure(client(make(), { baseUrl: closedBase }).get('ns', 'k'));
    expect([down.code, down.status, down.message]).toEqual(['CACHE_005', 503, 'Origin unreachable']);
    const slow = client(make(), { timeoutMs: 150 });
    const hung = await failure(slow.get('ns', 'hang'));
    expect([hung.code, hung.status, hung.message]).toEqual(['CACHE_005', 504, 'Origin timed out']);
    const stalled = await failure(slow.get('ns', 'stall-body'));
    expect([stalled.code, stalled.status, stalled.message]).toEqual(['CACHE_005', 504, 'Origin timed out']);
  });
});

describe('the undici transport beside the fetch transport', () => {
  it('gives the same result for the same answers', async () => {
    const paths = ['k', 'chunked', 'miss'];
    const viaFetch = client(fetchTransport());
    const viaUndici = client(undiciOriginTransport());
    for (const key of paths) {
      const [a, b] = [await viaFetch.get('ns', key), await viaUndici.get('ns', key)];
      expect(b).toEqual(a);
    }
  });

  it('reports the length of each body it read whole (Content-Length, chunked, error answers)', async () => {
    const lengths: number[] = [];
    const c = client(undiciOriginTransport(undefined, { onBody: (bytes) => lengths.push(bytes) }));
    await c.get('ns', 'k');
    await c.get('ns', 'chunked');
    await c.get('ns', 'miss');
    expect(lengths).toEqual([
      value.byteLength,
      value.byteLength,
      '{"error":{"code":"CACHE_001","message":"Key not found"}}'.length,
    ]);
  });

  it('keeps the base URL path prefix', async () => {
    await client(undiciOriginTransport(), { baseUrl: `${base}/prefix/` }).get('ns', 'k');
    expect(received.at(-1)!.url).toBe('/prefix/api/v1/cache/ns/k');
  });
});
