import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { buildWorker } from '../../scripts/build-worker.ts';
import { hs256Issuer } from '../support/jwt.ts';
import { originFor } from '../support/stack.ts';

/** The Worker edge verifies tokens itself (jose on WebCrypto in workerd) and calls the origin with its own. */
describe('edge on Workers with auth on', () => {
  const issuer = hs256Issuer();
  let origin: RunningOrigin;
  let mf: Miniflare;

  beforeAll(async () => {
    origin = await originFor(issuer.env);
    mf = new Miniflare({
      modules: true,
      scriptPath: await buildWorker(),
      compatibilityDate: '2025-09-01',
      bindings: { ORIGIN_URL: origin.url, ...issuer.env, EDGE_ORIGIN_TOKEN: await issuer.sign({ ns: ['*'] }) },
    });
    await mf.ready;
    const admin = await issuer.sign({ ns: ['*'] });
    const put = await fetch(`${origin.url}/api/v1/cache/tenant-a/k?ttl=60`, {
      method: 'PUT',
      body: 'for tenant a',
      headers: { Authorization: `Bearer ${admin}` },
    });
    expect(put.status).toBe(200);
  });
  afterAll(async () => {
    await mf?.dispose();
    await origin?.close();
  });

  it('no token is 401, another namespace is 403, a good token reads through to the origin', async () => {
    const url = 'http://edge.test/api/v1/cache/tenant-a/k';
    const anonymous = await mf.dispatchFetch(url);
    expect([anonymous.status, ((await anonymous.json()) as { error: { code: string } }).error.code]).toEqual([
      401,
      'AUTH_001',
    ]);
    const outsider = await issuer.sign({ scope: ['cache:read'], ns: ['tenant-b'] });
    const denied = await mf.dispatchFetch(url, { headers: { Authorization: `Bearer ${outsider}` } });
    expect(denied.status).toBe(403);
    await denied.text();
    const reader = await issuer.sign({ scope: ['cache:read'], ns: ['tenant-a'] });
    const ok = await mf.dispatchFetch(url, { headers: { Authorization: `Bearer ${reader}` } });
    expect([ok.status, await ok.text()]).toEqual([200, 'for tenant a']);
  });
});
