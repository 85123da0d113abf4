import { Hono } from 'hono';
import { purgeScope } from '../../shared/auth.ts';
import { authorizeBody } from '../../shared/auth-http.ts';
import type { AppEnv } from '../../shared/http.ts';
import { jsonBody, jsonSizeLimit } from '../../shared/http.ts';
import { invalidationEventSchema } from '../../shared/schemas.ts';
import type { InProcessSource } from './in-process-source.ts';

/** Path of the origin's in-process invalidation endpoint. */
export const invalidationsPath = '/api/v1/invalidations';

/**
 * The route `POST /api/v1/invalidations`, mounted by the origin when no Kafka is
 * configured: the body is one invalidation event (ARCHITECTURE.md §4,
 * `invalidationEventSchema`), applied through the in-process source with the
 * same validation and idempotency by `id` as a Kafka event. Answers
 * `{ id, result: "applied" | "duplicate" }`.
 *
 * Needs `cache:delete` (`cache:flush` for a prefix) in the event's namespace when
 * authentication is on (docs/security.md).
 *
 * Errors: CACHE_004 (400) for malformed JSON or an invalid event; CACHE_005
 * (503) when the store fails.
 */
export function invalidationRoutes(source: InProcessSource, maxBodyBytes: number): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.post(invalidationsPath, jsonSizeLimit(maxBodyBytes), async (c) => {
    const event = await jsonBody(c, invalidationEventSchema, 'invalidate');
    authorizeBody(c, purgeScope(event), event.namespace);
    const result = await source.publish(event);
    return c.json({ id: event.id, result });
  });
  return app;
}
