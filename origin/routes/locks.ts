import { type Context, Hono } from 'hono';
import { CacheError } from '../../shared/errors.ts';
import { headers } from '../../shared/headers.ts';
import { type AppEnv, instrument, type RequestLog } from '../../shared/http.ts';
import type { LockGrantResponse, LockReleaseResponse } from '../../shared/lock-api.ts';
import type { RequestMetrics } from '../../shared/metrics.ts';
import {
  type LockService,
  lockParam,
  lockTokenSchema,
  lockTtlSecondsSchema,
  lockWaitSecondsSchema,
  validLockAddress,
} from '../locks/lock-service.ts';

/** Path of one lock; the edge relays the same paths to the origin. */
export const lockPath = '/api/v1/locks/:namespace/:name';

function grantBody(namespace: string, name: string, grant: { token: number; expiresAtMs: number }): LockGrantResponse {
  return { namespace, name, token: grant.token, expires_at_ms: grant.expiresAtMs };
}

function address(c: Context, operation: string): { namespace: string; name: string } {
  const namespace = c.req.param('namespace') ?? '';
  const name = c.req.param('name') ?? '';
  validLockAddress(namespace, name, operation);
  return { namespace, name };
}

function token(c: Context, operation: string): number {
  const value = c.req.header(headers.lockToken);
  if (value === undefined) {
    throw new CacheError('CACHE_004', `${headers.lockToken} header is required`, { details: { operation } });
  }
  return lockParam(lockTokenSchema, value, 'token', operation);
}

/**
 * The origin's lock routes (docs/locks.md), as a sub-app for `origin/app.ts`
 * (wire shapes in `shared/lock-api.ts`):
 *
 * | method | path | answer |
 * |---|---|---|
 * | POST | `/api/v1/locks/{ns}/{name}?ttl=S[&wait=S]` | `{namespace, name, token, expires_at_ms}` |
 * | PUT | `/api/v1/locks/{ns}/{name}/renew?ttl=S` + `X-Lock-Token` | `{namespace, name, token, expires_at_ms}` |
 * | DELETE | `/api/v1/locks/{ns}/{name}` + `X-Lock-Token` | `{namespace, name, released: true}` |
 * | GET | `/api/v1/locks/{ns}/{name}` | `{namespace, name, token, expires_at_ms}` |
 *
 * Errors: CACHE_004 bad input; LOCK_001 (409) held, or a token that does not
 * hold the lock; CACHE_001 (404) GET of a free lock; CACHE_005 (503) store
 * unavailable (never answered from the fallback tier).
 */
export function lockRoutes(deps: {
  locks: LockService;
  metrics: RequestMetrics;
  tier: string;
  log?: RequestLog;
}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { locks, tier } = deps;
  const timed = instrument(deps.metrics, deps.log);

  app.post(lockPath, (c) =>
    timed(c, 'lock_acquire', async () => {
      const { namespace, name } = address(c, 'lock_acquire');
      const ttl = lockParam(lockTtlSecondsSchema, c.req.query('ttl'), 'ttl', 'lock_acquire');
      const wait = lockParam(lockWaitSecondsSchema, c.req.query('wait') ?? 0, 'wait', 'lock_acquire');
      const grant = await locks.acquire(namespace, name, ttl, wait, c.req.raw.signal);
      return {
        res: c.json(grantBody(namespace, name, grant)),
        tier,
        result: 'ok',
      };
    }),
  );

  app.put(`${lockPath}/renew`, (c) =>
    timed(c, 'lock_renew', async () => {
      const { namespace, name } = address(c, 'lock_renew');
      const ttl = lockParam(lockTtlSecondsSchema, c.req.query('ttl'), 'ttl', 'lock_renew');
      const grant = await locks.renew(namespace, name, token(c, 'lock_renew'), ttl);
      return {
        res: c.json(grantBody(namespace, name, grant)),
        tier,
        result: 'ok',
      };
    }),
  );

  app.delete(lockPath, (c) =>
    timed(c, 'lock_release', async () => {
      const { namespace, name } = address(c, 'lock_release');
      await locks.release(namespace, name, token(c, 'lock_release'));
      const body: LockReleaseResponse = { namespace, name, released: true };
      return { res: c.json(body), tier, result: 'ok' };
    }),
  );

  app.get(lockPath, (c) =>
    timed(c, 'lock_get', async () => {
      const { namespace, name } = address(c, 'lock_get');
      const holder = await locks.inspect(namespace, name);
      return {
        res: c.json(grantBody(namespace, name, holder)),
        tier,
        result: 'hit',
      };
    }),
  );
  return app;
}
