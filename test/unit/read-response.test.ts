import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { type AppEnv, type ReadSource, readResponse, requestIdMiddleware } from '../../shared/http.ts';

const entry = {
  value: new TextEncoder().encode('hello'),
  contentType: 'text/plain',
  version: 42,
  createdAtMs: 10_000,
  expiresAtMs: 70_000,
  tags: ['a', 'b'],
};

/** An app that answers every GET with the one read-response builder. */
function appAnswering(source: ReadSource): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('*', requestIdMiddleware);
  app.get('/read', (c) => readResponse(c, entry, source));
  return app;
}

describe('read response (edge and origin)', () => {
  it('answers 200 with the value, its Content-Type and every read header, Age in whole seconds', async () => {
    const app = appAnswering({ status: 'HIT', tier: 'edge', degraded: false, nowMs: 12_999 });
    const res = await app.request('/read', { headers: { 'X-Request-Id': 'req-1' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello');
    expect(Object.fromEntries(res.headers)).toEqual({
      'x-cache': 'HIT',
      'x-cache-tier': 'edge',
      etag: '"v42"',
      age: '2',
      // Fresh lifetime from creation: max-age − Age = 57 s remain (RFC 9111 §4.2.3).
      'cache-control': 'max-age=59',
      'x-cache-version': '42',
      'cache-tag': 'a,b',
      'x-request-id': 'req-1',
      'content-type': 'text/plain',
    });
  });

  it('answers 304 without a body but with the same headers when If-None-Match matches', async () => {
    const app = appAnswering({ status: 'MISS', tier: 'redis', degraded: true, nowMs: 10_000, exposeExpiry: true });
    const res = await app.request('/read', { headers: { 'If-None-Match': 'W/"v1", "v42"' } });
    expect(res.status).toBe(304);
    expect(await res.text()).toBe('');
    expect(res.headers.get('ETag')).toBe('"v42"');
    expect(res.headers.get('X-Cache-Degraded')).toBe('1');
    expect(res.headers.get('X-Cache-Expires-At')).toBe('70000');
    expect(res.headers.get('Content-Type')).toBeNull();
  });

  it('sends the expiry only when asked (the origin does, the edge does not)', async () => {
    const edge = await appAnswering({ status: 'HIT', tier: 'edge', degraded: false, nowMs: 0 }).request('/read');
    expect(edge.headers.get('X-Cache-Expires-At')).toBeNull();
    expect(edge.headers.get('Age')).toBe('0');
  });
});
