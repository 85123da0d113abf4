import type { MiddlewareHandler } from 'hono';
import { CacheError } from './errors.ts';

/**
 * The query parameters each API route takes, and a guard that refuses any
 * other, so a typo such as `?TTL=5` is an error instead of a write with the
 * default TTL. Runtime-free; the OpenAPI description lists the same names.
 */

/** Query parameters by route: `PUT` of a cache entry, the purge stream and page, lock acquire and renew; every other API route takes none. */
export const queryParameters = {
  /** `PUT /api/v1/cache/{namespace}/{key}`: TTL seconds, comma list of tags, encrypt at rest. */
  put: ['ttl', 'tags', 'encrypt'],
  /** `GET /api/v1/purge/stream`: the position to resume after (same as `Last-Event-ID`). */
  purgeStream: ['since'],
  /** `GET /api/v1/purges`: the polling edges' page of the purge log after a position, at most `limit` entries. */
  purgePage: ['after', 'limit'],
  /** `POST /api/v1/locks/{namespace}/{name}`: lease seconds, seconds to wait for a held lock (docs/locks.md). */
  lockAcquire: ['ttl', 'wait'],
  /** `PUT /api/v1/locks/{namespace}/{name}/renew`: new lease seconds. */
  lockRenew: ['ttl'],
  /** `GET /api/v1/namespaces/{namespace}/keys`: glob, opaque cursor, work bound. */
  listKeys: ['match', 'cursor', 'count'],
  /** `GET /api/v1/cache/{namespace}/pattern/{pattern}`: work bound of the first page. */
  listPattern: ['count'],
  /** `POST /api/v1/jobs/warm`: the job's namespace, input format and options (`shared/warm.ts`). */
  warm: ['namespace', 'format', 'url_template', 'top', 'concurrency', 'retries', 'ttl'],
} as const satisfies Record<string, readonly string[]>;

/** The query parameters `method` on `pathname` accepts (empty for most API routes). */
export function allowedQueryParameters(method: string, pathname: string): readonly string[] {
  if (method === 'PUT' && /^\/api\/v1\/cache\/[^/]+\/.+$/.test(pathname)) return queryParameters.put;
  if (method === 'POST' && /^\/api\/v1\/locks\/[^/]+\/[^/]+$/.test(pathname)) return queryParameters.lockAcquire;
  if (method === 'PUT' && /^\/api\/v1\/locks\/[^/]+\/[^/]+\/renew$/.test(pathname)) return queryParameters.lockRenew;
  if ((method === 'GET' || method === 'HEAD') && pathname === '/api/v1/purge/stream')
    return queryParameters.purgeStream;
  if ((method === 'GET' || method === 'HEAD') && pathname === '/api/v1/purges') return queryParameters.purgePage;
  if (method === 'GET' && /^\/api\/v1\/namespaces\/[^/]+\/keys$/.test(pathname)) return queryParameters.listKeys;
  if (method === 'GET' && /^\/api\/v1\/cache\/[^/]+\/pattern\/[^/]+$/.test(pathname))
    return queryParameters.listPattern;
  if (method === 'POST' && pathname === '/api/v1/jobs/warm') return queryParameters.warm;
  return [];
}

/**
 * Middleware refusing a query parameter the route does not take, or one
 * given twice, with 400 CACHE_004 naming it (`details.parameter`, and the
 * accepted ones in `details.allowed`). Mount on `/api/*`.
 */
export const rejectUnknownQuery: MiddlewareHandler = async (c, next) => {
  const url = c.req.url;
  const q = url.indexOf('?');
  // The hot read path has no query: nothing to parse.
  if (q === -1) return next();
  const search = new URLSearchParams(url.slice(q + 1));
  const allowed = allowedQueryParameters(c.req.method, c.req.path);
  const seen = new Set<string>();
  for (const name of search.keys()) {
    if (seen.has(name)) {
      throw new CacheError('CACHE_004', `Query parameter "${name}" given more than once`, {
        details: { parameter: name },
      });
    }
    seen.add(name);
    if (!allowed.includes(name)) {
      const accepted = allowed.length > 0 ? `; this route takes ${allowed.join(', ')}` : '; this route takes none';
      throw new CacheError('CACHE_004', `Unknown query parameter "${name}"${accepted}`, {
        details: { parameter: name, allowed: [...allowed] },
      });
    }
  }
  return next();
};
