import { afterEach, describe, expect, inject, it } from 'vitest';
import { captureLog } from '../support/log-capture.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * Issue 7: "No values or tokens are ever logged", proven on real logs: an
 * edge and an origin (real Redis) log at debug level into memory while
 * every REST operation carries a sentinel value and a bearer token.
 */
describe('logs', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('never contain a stored value or a bearer token, on any path, at debug level', async () => {
    const sentinel = `SENTINEL-VALUE-${crypto.randomUUID()}`;
    const token = `SENTINEL-TOKEN-${crypto.randomUUID()}`;
    const originLog = captureLog('strata-origin');
    const edgeLog = captureLog('strata-edge');
    const origin = await originFor({ REDIS_URL: inject('redisUrl'), LOG_LEVEL: 'debug' }, { logger: originLog.logger });
    cleanups.push(() => origin.close());
    const edge = await edgeFor(origin.url, { LOG_LEVEL: 'debug' }, { logger: edgeLog.logger });
    cleanups.push(() => edge.close());

    const auth = { Authorization: `Bearer ${token}` };
    const json = { ...auth, 'Content-Type': 'application/json' };
    const calls: [string, string, RequestInit][] = [
      [edge.url, '/api/v1/cache/secrets/k1?ttl=60&tags=t1', { method: 'PUT', body: sentinel, headers: auth }],
      [edge.url, '/api/v1/cache/secrets/k1', { headers: auth }],
      [edge.url, '/api/v1/cache/secrets/k1', { headers: auth }],
      [origin.url, '/api/v1/cache/secrets/k1', { headers: auth }],
      [
        edge.url,
        '/api/v1/cache/secrets/batch/set',
        { method: 'POST', headers: json, body: JSON.stringify({ entries: { k2: sentinel }, ttl: 60 }) },
      ],
      [
        edge.url,
        '/api/v1/cache/secrets/batch/get',
        { method: 'POST', headers: json, body: JSON.stringify({ keys: ['k1', 'k2', 'absent'] }) },
      ],
      // Errors: a bad TTL, malformed JSON carrying the value, an unknown route.
      [edge.url, '/api/v1/cache/secrets/k3?ttl=-1', { method: 'PUT', body: sentinel, headers: auth }],
      [
        origin.url,
        '/api/v1/cache/secrets/batch/set',
        { method: 'POST', headers: json, body: `{"entries":${sentinel}` },
      ],
      [origin.url, `/nowhere/${token}`, { headers: auth }],
      [
        origin.url,
        '/api/v1/purge',
        { method: 'POST', headers: json, body: JSON.stringify({ namespace: 'secrets', tags: ['t1'] }) },
      ],
      [edge.url, '/api/v1/cache/secrets/k1', { method: 'DELETE', headers: auth }],
    ];
    for (const [base, path, init] of calls) {
      const res = await fetch(`${base}${path}`, init);
      await res.arrayBuffer();
    }
    expect((await fetch(`${origin.url}/api/v1/cache/secrets/k2`)).status).toBe(200);

    // Every cache request was logged, once (so the check below is not vacuous): the edge rejects the bad TTL itself;
    // the unknown route is not a cache request...
    const requestLines = (log: ReturnType<typeof captureLog>) =>
      log.records().filter((r) => typeof r.request_id === 'string' && typeof r.operation === 'string');
    await eventually('the edge to log its 7 cache requests', () => requestLines(edgeLog).length === 7);
    await eventually('the origin to log its 8 cache requests', () => requestLines(originLog).length === 8);
    // ...and no line anywhere holds the value or the token, raw or base64.
    const forbidden = [sentinel, token, Buffer.from(sentinel).toString('base64')];
    for (const line of [...originLog.lines, ...edgeLog.lines]) {
      for (const secret of forbidden) expect(line).not.toContain(secret);
    }
  });
});
