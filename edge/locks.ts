import type { Context, Hono } from 'hono';
import { headers } from '../shared/headers.ts';
import type { Answer } from '../shared/http.ts';
import { errorFrom, type OriginClient } from './origin-client.ts';

/** Milliseconds an edge keeps between a relayed acquire's `wait` and its origin time limit. */
export const lockWaitMarginMs = 1_000;

/**
 * Relays the lock API (docs/locks.md) to the origin unchanged, with no
 * caching: a lock lives only in the origin's store. The caller's
 * `cache:lock` grant was checked by the edge's auth middleware.
 *
 * A `wait` longer than the edge's origin time limit (`EDGE_ORIGIN_TIMEOUT_MS`)
 * less {@link lockWaitMarginMs} is shortened to it, so the origin answers
 * (granted, or LOCK_001) before the edge gives up: a grant the caller never
 * heard of would sit on the lock until its TTL ran out.
 */
export function mountLockPassThrough<E extends { Variables: { requestId: string } }>(
  app: Hono<E>,
  origin: OriginClient,
  timed: (c: Context<E>, operation: string, run: () => Promise<Answer>) => Promise<Response>,
): void {
  const relay = (operation: string) => (c: Context<E>) =>
    timed(c, operation, async () => {
      const url = new URL(c.req.url);
      const wait = url.searchParams.get('wait');
      const maxWaitSeconds = Math.max(0, (origin.timeoutMs - lockWaitMarginMs) / 1000);
      if (wait !== null && Number(wait) > maxWaitSeconds) url.searchParams.set('wait', String(maxWaitSeconds));
      const token = c.req.header(headers.lockToken);
      const res = await origin.request(`${url.pathname}${url.search}`, {
        method: c.req.method,
        headers: {
          [headers.requestId]: c.get('requestId'),
          ...(token === undefined ? {} : { [headers.lockToken]: token }),
        },
      });
      if (res.status !== 200) throw await errorFrom(res);
      return {
        res: new Response(res.body, { status: 200, headers: { 'Content-Type': 'application/json' } }),
        tier: 'none',
        result: 'ok',
      };
    });
  app.post('/api/v1/locks/:namespace/:name', relay('lock_acquire'));
  app.put('/api/v1/locks/:namespace/:name/renew', relay('lock_renew'));
  app.delete('/api/v1/locks/:namespace/:name', relay('lock_release'));
  app.get('/api/v1/locks/:namespace/:name', relay('lock_get'));
}
