import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { CacheError } from '../../shared/errors.ts';
import { type AppEnv, jsonBody } from '../../shared/http.ts';
import { purgeAppliedPath, purgeAppliedReportSchema } from '../../shared/purge-report.ts';
import type { PurgePosition } from '../../shared/schemas.ts';

/**
 * Mounts `POST /api/v1/purge/applied`: an edge's `{ edge_id, position }`
 * (`shared/purge-report.ts`), the purge-log position it has applied, handed
 * to `onReport` (the staleness canary; a no-op when it is off). 204; 400
 * CACHE_004 when malformed; 413 CACHE_003 over 4 KiB. Needs `cache:read` in
 * every namespace, like the purge stream the edge follows
 * (`shared/auth-http.ts`).
 */
export function purgeAppliedRoutes(onReport: (edgeId: string, position: PurgePosition) => void): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.post(
    purgeAppliedPath,
    bodyLimit({
      maxSize: 4096,
      onError: () => {
        throw new CacheError('CACHE_003', 'Applied-position report too large', { status: 413 });
      },
    }),
    async (c) => {
      const report = await jsonBody(c, purgeAppliedReportSchema, 'purge_applied');
      onReport(report.edge_id, report.position);
      return c.body(null, 204);
    },
  );
  return app;
}
