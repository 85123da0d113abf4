import { Hono } from 'hono';
import { invalidInput } from '../../shared/errors.ts';
import type { AppEnv } from '../../shared/http.ts';
import { type PurgePollResponse, purgePollQuerySchema } from '../../shared/schemas.ts';
import type { PurgeBus } from '../purge/bus.ts';

/** Path of the purge log's poll endpoint, for edges that cannot hold the purge stream (Workers isolates). */
export const purgePollPath = '/api/v1/purges';

/**
 * Mounts `GET /api/v1/purges?after=<position>&limit=<n>`: one page of the
 * purge log after an opaque position (`PurgeBus.read`), shaped by
 * `purgePollResponseSchema` (`shared/schemas.ts`): `entries` (oldest first,
 * at most `limit`), or `reset` for a position the log cannot place (another
 * log or incarnation, too old, ahead of the head), plus `head`, `tail_live`
 * and `tail_age_ms` (ms). Without `after` it reads nothing and tells the head.
 *
 * Needs `purge:read` in every namespace (`shared/auth-http.ts`).
 * Errors: 400 CACHE_004 for a malformed `after` or a `limit` outside 1–1000.
 */
export function purgePollRoutes(bus: PurgeBus): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get(purgePollPath, async (c) => {
    const parsed = purgePollQuerySchema.safeParse({ after: c.req.query('after'), limit: c.req.query('limit') });
    if (!parsed.success) throw invalidInput(parsed.error, { operation: 'purges' });
    const page = await bus.read(parsed.data.after ?? null, parsed.data.limit);
    const body: PurgePollResponse = {
      entries: [...page.entries],
      reset: page.reset,
      head: page.head,
      tail_live: page.tailLive,
      tail_age_ms: Math.max(0, Math.round(page.tailAgeMs)),
    };
    return c.json(body, 200, { 'Cache-Control': 'no-store' });
  });
  return app;
}
