import { afterEach, describe, expect, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { errorEnvelopeSchema } from '../../shared/errors.ts';
import { edgeRuntimes } from '../support/edge-runtimes.ts';
import { type CuttableProxy, cuttableProxy } from '../support/proxy.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const leaseMs = 1_500;
/** Timer and scheduling slack on a loaded machine; the bound itself is the lease. */
const slackMs = 100;

/**
 * The lease under a dead network, on every runtime: the link between edge
 * and origin stops forwarding bytes without closing anything (a proxy that
 * holds old and new connections silent), the origin acknowledges a new
 * value, and the cut-off edge must not serve the old value to any request
 * that starts later than the lease after the acknowledgement. With the
 * origin unreachable it answers 503/504 CACHE_005 instead; when the link
 * comes back it serves the new value.
 */
describe.each(edgeRuntimes)('lease on $name: a silently cut link', (runtime) => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('the cut-off edge stops serving the old value within the lease', async () => {
    const origin: RunningOrigin = await originFor({ PURGE_HEARTBEAT_MS: '250' });
    cleanups.push(() => origin.close());
    const proxy: CuttableProxy = await cuttableProxy(origin.port);
    cleanups.push(() => proxy.close());
    const edge = await runtime.start(proxy.url, {
      EDGE_LEASE_MS: String(leaseMs),
      EDGE_PURGE_IDLE_TIMEOUT_MS: String(leaseMs),
      EDGE_PURGE_POLL_MS: '500',
      EDGE_ORIGIN_TIMEOUT_MS: '400',
    });
    cleanups.push(() => edge.close());
    const path = '/api/v1/cache/cut/k';
    const write = (value: string) => fetch(`${origin.url}${path}?ttl=600`, { method: 'PUT', body: value });
    expect((await write('old')).status).toBe(200);
    expect(await (await edge.fetch(path)).text()).toBe('old');
    expect((await edge.fetch(path)).headers.get('X-Cache')).toBe('HIT');

    proxy.blackhole();
    expect((await write('new')).status).toBe(200);
    const acknowledgedAt = Date.now();

    const late: { startedAfterMs: number; status: number }[] = [];
    let unreachable = 0;
    // Read until well past the lease; the edge must end up refusing, not serving old.
    while (Date.now() - acknowledgedAt < leaseMs * 2) {
      const startedAt = Date.now();
      const res = await edge.fetch(path);
      const body = await res.text();
      if (res.status === 200 && body === 'old' && startedAt - acknowledgedAt > leaseMs + slackMs) {
        late.push({ startedAfterMs: startedAt - acknowledgedAt, status: res.status });
      }
      if (res.status === 503 || res.status === 504) {
        expect(errorEnvelopeSchema.parse(JSON.parse(body)).error.code).toBe('CACHE_005');
        unreachable++;
      }
    }
    expect(late).toEqual([]);
    expect(unreachable).toBeGreaterThan(0);
    if (runtime.name !== 'workerd') {
      // Node and Deno expose the lease on /metrics (Workers have no scrape).
      const metrics = await (await edge.fetch('/metrics')).text();
      const sample = (name: string) =>
        Number(
          metrics
            .split('\n')
            .find((l) => l.startsWith(name))
            ?.split(' ')
            .pop() ?? Number.NaN,
        );
      expect(sample('strata_edge_lease_lapses_total')).toBeGreaterThanOrEqual(1);
      expect(sample('strata_edge_revalidations_total{outcome="error"')).toBeGreaterThanOrEqual(1);
      expect(sample('strata_edge_lease_age_seconds')).toBeGreaterThan(leaseMs / 1000);
    }

    proxy.restore();
    await eventually(
      'the new value once the link is back',
      async () => {
        const res = await edge.fetch(path);
        return res.status === 200 && (await res.text()) === 'new';
      },
      15_000,
    );
  });
});
