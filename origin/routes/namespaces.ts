import { Hono } from 'hono';
import { principalOf } from '../../shared/auth-http.ts';
import type { AppEnv } from '../../shared/http.ts';
import { namespacePath } from '../../shared/http.ts';
import type { FlushResponse, ReloadResponse } from '../../shared/schemas.ts';
import type { CacheService } from '../cache-service.ts';
import type { NamespaceReports } from '../namespaces/report.ts';
import type { Reloader } from '../reload.ts';

/**
 * Management routes (grants in `shared/auth-http.ts` `restAccess`):
 *
 * - `POST /api/v1/namespaces/{namespace}/flush` (`cache:flush` in the
 *   namespace): bumps the namespace's version; answers the new version.
 * - `GET /api/v1/namespaces/{namespace}` (`metrics:read` in the namespace):
 *   the current version and its history.
 * - `GET /api/v1/namespaces/{namespace}/stats` (`metrics:read` in the namespace).
 * - `GET /api/v1/namespaces` (`metrics:read`): every namespace's stats.
 * - `POST /api/v1/reload` (`cache:reload`, admin): re-reads the run-time configuration.
 *
 * Errors: CACHE_004 (400) for a bad namespace or an invalid new
 * configuration (one line naming the variable); CACHE_005 (503) when the
 * store or the purge log fails.
 */
export function namespaceRoutes(deps: {
  service: CacheService;
  reports: NamespaceReports;
  reloader?: Reloader;
}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { service, reports } = deps;

  app.post('/api/v1/namespaces/:namespace/flush', async (c) => {
    const namespace = namespacePath(c, 'flush');
    const flushed = await service.flush(namespace, principalOf(c)?.serviceId ?? 'anonymous');
    const body: FlushResponse = {
      namespace,
      version: flushed.version,
      flushed_at_ms: flushed.flushedAtMs,
      service_id: flushed.by,
      seq: flushed.seq,
    };
    return c.json(body);
  });
  app.get('/api/v1/namespaces', async (c) => c.json(await reports.overview()));
  app.get('/api/v1/namespaces/:namespace', async (c) => c.json(await reports.version(namespacePath(c, 'version'))));
  app.get('/api/v1/namespaces/:namespace/stats', async (c) => c.json(await reports.stats(namespacePath(c, 'stats'))));
  if (deps.reloader) {
    const { reloader } = deps;
    app.post('/api/v1/reload', async (c) => {
      const result = await reloader.reload();
      const body: ReloadResponse = { applied: result.applied, restart_required: result.restartRequired };
      return c.json(body);
    });
  }
  return app;
}
