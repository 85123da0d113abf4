import { afterEach, describe, expect, it } from 'vitest';
import { hs256Issuer } from '../support/jwt.ts';
import { edgeFor, originFor } from '../support/stack.ts';

/** ICD §6.2: GET /health/live, /health/ready and /health/metrics on the origin and the edge. */
describe('ICD health endpoints', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('answer like /health, /ready and /metrics, with the same access rules', async () => {
    const issuer = hs256Issuer();
    const origin = await originFor(issuer.env);
    cleanups.push(() => origin.close());
    const edge = await edgeFor(origin.url, { EDGE_ORIGIN_TOKEN: await issuer.sign({ serviceId: 'edge' }) });
    cleanups.push(() => edge.close());
    const token = await issuer.sign({ serviceId: 'prometheus', scope: ['metrics:read'] });
    for (const base of [origin.url, edge.url]) {
      const live = await fetch(`${base}/health/live`);
      expect(live.status).toBe(200);
      expect(await live.json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${base}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready' });
      if (base === origin.url) {
        // Authentication is on at the origin: metrics need metrics:read, as /metrics does.
        expect((await fetch(`${base}/health/metrics`)).status).toBe(401);
      }
      const metrics = await fetch(`${base}/health/metrics`, { headers: { Authorization: `Bearer ${token}` } });
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('strata_requests_total');
    }
  });
});
