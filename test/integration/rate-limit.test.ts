import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { hs256Issuer } from '../support/jwt.ts';
import { edgeFor, originFor } from '../support/stack.ts';

describe('edge rate limit per service_id', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  let open: RunningEdge;
  const issuer = hs256Issuer();
  beforeAll(async () => {
    origin = await originFor(issuer.env);
    const env = { ...issuer.env, EDGE_ORIGIN_TOKEN: await issuer.sign({ ns: ['*'] }) };
    // A slow refill (one token per 100 s) so the test never races the clock.
    edge = await edgeFor(origin.url, { ...env, EDGE_RATE_LIMIT_RPS: '0.01', EDGE_RATE_LIMIT_BURST: '3' });
    open = await edgeFor(origin.url, env);
  });
  afterAll(async () => {
    await edge?.close();
    await open?.close();
    await origin?.close();
  });

  const get = async (base: string, token: string) => {
    const res = await fetch(`${base}/api/v1/cache/ns/k`, { headers: { Authorization: `Bearer ${token}` } });
    return { status: res.status, retryAfter: res.headers.get('Retry-After'), body: await res.text() };
  };

  it('the burst passes, the next request is 429 CACHE_005 with Retry-After, and another service is unaffected', async () => {
    const a = await issuer.sign({ serviceId: 'svc-a', scope: ['cache:read'], ns: ['ns'] });
    const b = await issuer.sign({ serviceId: 'svc-b', scope: ['cache:read'], ns: ['ns'] });
    for (let i = 0; i < 3; i++) expect((await get(edge.url, a)).status).toBe(404);
    const limited = await get(edge.url, a);
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.body).error.code).toBe('CACHE_005');
    expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await get(edge.url, b)).status).toBe(404);
    expect((await fetch(`${edge.url}/health`)).status).toBe(200);
  });

  it('is off unless configured', async () => {
    const a = await issuer.sign({ serviceId: 'svc-a', scope: ['cache:read'], ns: ['ns'] });
    for (let i = 0; i < 20; i++) expect((await get(open.url, a)).status).toBe(404);
  });
});
