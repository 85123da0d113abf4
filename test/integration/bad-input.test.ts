import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { errorEnvelopeSchema } from '../../shared/errors.ts';
import { edgeFor, originFor } from '../support/stack.ts';

/**
 * Bad input gets the documented envelope and code, reaches no store, and the
 * server keeps serving. Run against the edge and the origin alike.
 */
describe('bad input', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  beforeAll(async () => {
    origin = await originFor({ MAX_VALUE_BYTES: '1024' });
    edge = await edgeFor(origin.url, { MAX_VALUE_BYTES: '1024' });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  const cases: Array<{ name: string; path: string; init?: RequestInit; status: number; code: string }> = [
    { name: 'upper-case namespace', path: '/api/v1/cache/Bad/key', status: 400, code: 'CACHE_004' },
    { name: 'namespace too long', path: `/api/v1/cache/${'n'.repeat(65)}/key`, status: 400, code: 'CACHE_004' },
    { name: 'key over 512 bytes', path: `/api/v1/cache/ns/${'é'.repeat(257)}`, status: 400, code: 'CACHE_004' },
    { name: 'key with a control character', path: '/api/v1/cache/ns/a%01b', status: 400, code: 'CACHE_004' },
    { name: 'key with NUL', path: '/api/v1/cache/ns/a%00b', status: 400, code: 'CACHE_004' },
    {
      name: 'TTL not a number',
      path: '/api/v1/cache/ns/k?ttl=soon',
      init: { method: 'PUT', body: 'x' },
      status: 400,
      code: 'CACHE_004',
    },
    {
      name: 'TTL zero',
      path: '/api/v1/cache/ns/k?ttl=0',
      init: { method: 'PUT', body: 'x' },
      status: 400,
      code: 'CACHE_004',
    },
    {
      name: 'TTL fractional',
      path: '/api/v1/cache/ns/k?ttl=1.5',
      init: { method: 'PUT', body: 'x' },
      status: 400,
      code: 'CACHE_004',
    },
    {
      name: 'value over the size limit',
      path: '/api/v1/cache/ns/big',
      init: { method: 'PUT', body: 'x'.repeat(1025) },
      status: 413,
      code: 'CACHE_003',
    },
    {
      name: 'malformed JSON',
      path: '/api/v1/cache/ns/batch/get',
      init: { method: 'POST', body: '{"keys": [', headers: { 'Content-Type': 'application/json' } },
      status: 400,
      code: 'CACHE_004',
    },
    {
      name: 'JSON of the wrong shape',
      path: '/api/v1/cache/ns/batch/get',
      init: { method: 'POST', body: '{"keys": "a"}', headers: { 'Content-Type': 'application/json' } },
      status: 400,
      code: 'CACHE_004',
    },
    {
      name: 'wrong content type on a JSON route',
      path: '/api/v1/cache/ns/batch/set',
      init: { method: 'POST', body: '{"entries":{"a":"b"}}', headers: { 'Content-Type': 'text/plain' } },
      status: 400,
      code: 'CACHE_004',
    },
    {
      name: 'empty batch',
      path: '/api/v1/cache/ns/batch/set',
      init: { method: 'POST', body: '{"entries":{}}', headers: { 'Content-Type': 'application/json' } },
      status: 400,
      code: 'CACHE_004',
    },
    {
      name: 'purge with no selector',
      path: '/api/v1/purge',
      init: { method: 'POST', body: '{"namespace":"ns"}', headers: { 'Content-Type': 'application/json' } },
      status: 400,
      code: 'CACHE_004',
    },
    { name: 'unknown route', path: '/api/v1/nope', status: 404, code: 'CACHE_001' },
  ];

  for (const side of ['edge', 'origin'] as const) {
    for (const c of cases) {
      it(`${side}: ${c.name} → ${c.status} ${c.code}, and nothing is stored`, async () => {
        const base = side === 'edge' ? edge.url : origin.url;
        const before = origin.bus.health().seq;
        const res = await fetch(`${base}${c.path}`, c.init);
        expect(res.status).toBe(c.status);
        const envelope = errorEnvelopeSchema.parse(await res.json());
        expect(envelope.error.code).toBe(c.code);
        expect(envelope.error.message.length).toBeGreaterThan(0);
        expect(typeof envelope.error.details?.timestamp).toBe('string');
        expect(origin.bus.health().seq).toBe(before);
      });
    }

    it(`${side}: keeps serving good requests after bad ones`, async () => {
      const base = side === 'edge' ? edge.url : origin.url;
      const put = await fetch(`${base}/api/v1/cache/ns/good-${side}`, { method: 'PUT', body: 'fine' });
      expect(put.status).toBe(200);
      expect(await (await fetch(`${base}/api/v1/cache/ns/good-${side}`)).text()).toBe('fine');
    });
  }

  it('an oversized value is not stored under its key', async () => {
    await fetch(`${edge.url}/api/v1/cache/ns/big`, { method: 'PUT', body: 'y'.repeat(5000) });
    expect((await fetch(`${origin.url}/api/v1/cache/ns/big`)).status).toBe(404);
  });
});
