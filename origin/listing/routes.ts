import { Hono } from 'hono';
import { invalidInput } from '../../shared/errors.ts';
import type { AppEnv, RequestLog } from '../../shared/http.ts';
import { instrument, namespacePath } from '../../shared/http.ts';
import { listQuerySchema } from '../../shared/listing.ts';
import type { RequestMetrics } from '../../shared/metrics.ts';
import { type KeyListingDeps, listKeys } from './key-listing.ts';

/**
 * Key listing routes (scope `cache:read` on the namespace, `shared/auth-http.ts`):
 *
 * - `GET /api/v1/namespaces/{namespace}/keys?match=&cursor=&count=`: one
 *   page; follow `cursor` until it is null.
 * - `GET /api/v1/cache/{namespace}/pattern/{pattern}?count=`: the first page
 *   of the same listing (the interface control document's pattern endpoint).
 *   A key is one path segment (a `/` in a key is sent as `%2F`), so this
 *   two-segment path never names a key.
 *
 * Errors: CACHE_004 (400) for a bad namespace, glob, cursor or count;
 * CACHE_005 (503) when the store is unavailable or the Cluster's topology
 * changed during the listing.
 */
export function listingRoutes(deps: KeyListingDeps & { metrics: RequestMetrics; log?: RequestLog }): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const timed = instrument(deps.metrics, deps.log);

  app.get('/api/v1/namespaces/:namespace/keys', (c) =>
    timed(c, 'list', async () => {
      const namespace = namespacePath(c, 'list');
      const query = listQuerySchema.safeParse(c.req.query());
      if (!query.success) throw invalidInput(query.error, { namespace, operation: 'list' });
      const page = await listKeys(deps, namespace, query.data);
      return { res: c.json(page), tier: deps.store.kind, result: 'ok' };
    }),
  );
  // Registered as `…/:key/:pattern`, not `…/pattern/:pattern`: a static segment where the entry route has its
  // `:key` parameter makes Hono's SmartRouter give up its RegExpRouter for the slower TrieRouter on every request.
  app.get('/api/v1/cache/:namespace/:key/:pattern', (c) => {
    if (c.req.param('key') !== 'pattern') return c.notFound();
    return timed(c, 'list', async () => {
      const namespace = namespacePath(c, 'list');
      const query = listQuerySchema.pick({ count: true }).safeParse(c.req.query());
      if (!query.success) throw invalidInput(query.error, { namespace, operation: 'list' });
      const page = await listKeys(deps, namespace, { match: c.req.param('pattern'), count: query.data.count });
      return { res: c.json(page), tier: deps.store.kind, result: 'ok' };
    });
  });
  return app;
}
