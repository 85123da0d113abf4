import { request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { errorEnvelopeSchema } from '../../shared/errors.ts';
import { edgeFor, originFor } from '../support/stack.ts';

/**
 * Hostile input (issue 6 §3): path tricks the URL parser would otherwise
 * resolve, JSON nesting, oversized headers and batches, and a fast-check
 * property over random bytes as namespace, key and body. Sent with
 * `node:http` so the request target reaches the server exactly as written.
 */

interface RawAnswer {
  readonly status: number;
  readonly body: string;
}

function raw(
  base: string,
  method: string,
  path: string,
  body?: Uint8Array | string,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function codeOf(answer: RawAnswer): string {
  return errorEnvelopeSchema.parse(JSON.parse(answer.body)).error.code;
}

const pctBytes = (bytes: Uint8Array) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

describe('hostile input', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  beforeAll(async () => {
    origin = await originFor({ MAX_VALUE_BYTES: '4096' });
    edge = await edgeFor(origin.url, { MAX_VALUE_BYTES: '4096' });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  const tricks: Array<[string, string]> = [
    ['encoded slash', '/api/v1/cache/ns/a%2Fb'],
    ['encoded backslash', '/api/v1/cache/ns/a%5Cb'],
    ['encoded dot-dot', '/api/v1/cache/ns/%2e%2E'],
    ['plain dot-dot that a URL parser would resolve to another key', '/api/v1/cache/ns/x/../k'],
    ['dot segment as namespace', '/api/v1/cache/./k'],
    ['NUL', '/api/v1/cache/ns/a%00'],
    ['overlong UTF-8 for "/"', '/api/v1/cache/ns/%C0%AF'],
    ['UTF-8 surrogate', '/api/v1/cache/ns/%ED%A0%80'],
    ['truncated escape', '/api/v1/cache/ns/a%E2%82'],
    ['bad escape', '/api/v1/cache/ns/a%zz'],
  ];

  for (const side of ['edge', 'origin'] as const) {
    const base = () => (side === 'edge' ? edge.url : origin.url);

    for (const [name, path] of tricks) {
      it(`${side}: ${name} is 400 CACHE_004 on read and write, and no purge is published`, async () => {
        const seq = origin.bus.health().seq;
        const get = await raw(base(), 'GET', path);
        expect([get.status, codeOf(get)]).toEqual([400, 'CACHE_004']);
        const put = await raw(base(), 'PUT', path, 'x');
        expect([put.status, codeOf(put)]).toEqual([400, 'CACHE_004']);
        expect(origin.bus.health().seq).toBe(seq);
      });
    }

    it(`${side}: JSON nested deeper than 32 is 400 CACHE_004, a million deep included`, async () => {
      for (const depth of [33, 1_000_000]) {
        const body = `{"keys":${'['.repeat(depth)}${']'.repeat(depth)}}`;
        const res = await raw(base(), 'POST', '/api/v1/cache/ns/batch/get', body, {
          'Content-Type': 'application/json',
        });
        // A million-deep body is also over the JSON size limit: either answer is the envelope.
        expect([400, 413]).toContain(res.status);
        expect(['CACHE_004', 'CACHE_003']).toContain(codeOf(res));
      }
    });

    it(`${side}: a batch over 1000 keys and a TTL over a year are 400 CACHE_004`, async () => {
      const keys = Array.from({ length: 1001 }, (_, i) => `k${i}`);
      const batch = await raw(base(), 'POST', '/api/v1/cache/ns/batch/get', JSON.stringify({ keys }), {
        'Content-Type': 'application/json',
      });
      expect([batch.status, codeOf(batch)]).toEqual([400, 'CACHE_004']);
      const ttl = await raw(base(), 'PUT', '/api/v1/cache/ns/k?ttl=31536001', 'x');
      expect([ttl.status, codeOf(ttl)]).toEqual([400, 'CACHE_004']);
    });

    it(`${side}: headers over 16 KiB are refused by the HTTP parser with 431 CACHE_004 and the server keeps serving`, async () => {
      const res = await raw(base(), 'GET', '/api/v1/cache/ns/k', undefined, { 'X-Big': 'a'.repeat(20_000) });
      expect([res.status, codeOf(res)]).toEqual([431, 'CACHE_004']);
      expect((await raw(base(), 'GET', '/health')).status).toBe(200);
    });

    it(`${side}: random bytes as namespace, key and body always get 2xx or the documented 4xx envelope`, async () => {
      const goodPath = `/api/v1/cache/ns/good-${side}`;
      expect((await raw(base(), 'PUT', `${goodPath}?ttl=600`, 'precious')).status).toBe(200);
      const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max });
      await fc.assert(
        fc.asyncProperty(
          // Half the time a valid namespace, so random keys and bodies reach the store too.
          fc.oneof(fc.constant(new TextEncoder().encode('fuzz')), bytes(80)),
          bytes(600),
          bytes(200),
          fc.constantFrom('GET', 'PUT', 'DELETE'),
          async (ns, key, body, method) => {
            const path = `/api/v1/cache/${pctBytes(ns)}/${pctBytes(key)}`;
            const res = await raw(base(), method, path, method === 'PUT' ? body : undefined);
            if (res.status >= 200 && res.status < 300) return;
            expect([400, 404, 413]).toContain(res.status);
            expect(['CACHE_001', 'CACHE_003', 'CACHE_004']).toContain(codeOf(res));
          },
        ),
        { numRuns: 150 },
      );
      await fc.assert(
        fc.asyncProperty(bytes(300), fc.constantFrom('batch/get', 'batch/set'), async (body, op) => {
          const res = await raw(base(), 'POST', `/api/v1/cache/ns/${op}`, body, { 'Content-Type': 'application/json' });
          if (res.status === 200) return;
          expect([res.status, codeOf(res)]).toEqual([400, 'CACHE_004']);
        }),
        { numRuns: 100 },
      );
      const after = await raw(base(), 'GET', goodPath);
      expect([after.status, after.body]).toEqual([200, 'precious']);
    });
  }
});
