import type { Context, MiddlewareHandler } from 'hono';
import {
  allNamespaces,
  authorize,
  bearerToken,
  type Principal,
  type Scope,
  unauthenticated,
  type Verifier,
} from './auth.ts';
import { CacheError } from './errors.ts';
import type { AppEnv, RequestLog } from './http.ts';
import type { RequestMetrics } from './metrics.ts';

/**
 * The REST side of authentication (docs/security.md): one Hono middleware
 * that verifies the bearer token and checks the grant a path needs, for the
 * edge and the origin alike. Runtime-free.
 */

/**
 * What a request needs: nothing (`open`), a valid token (`authenticated`), or
 * a scope, optionally within a namespace (`"*"` = the admin grant). A
 * namespace carried in the body is checked later with {@link authorizeBody}.
 */
export type Access = 'open' | 'authenticated' | { readonly scope: Scope; readonly namespace?: string };

const openPaths = new Set([
  '/health',
  '/ready',
  '/health/live',
  '/health/ready',
  '/openapi.json',
  '/docs',
  '/dashboard',
]);

/**
 * The grant each REST endpoint needs (ARCHITECTURE.md §2):
 *
 * | endpoint | grant |
 * |---|---|
 * | `GET /health`, `/ready`, `/health/live`, `/health/ready` (ICD §6.2), `/openapi.json`, `/docs…`, `/dashboard` (page and assets) | open |
 * | `GET /metrics`, `/health/metrics`, `GET /api/v1/stats`, `POST /api/v1/edges/stats` | `metrics:read` |
 * | `GET /api/v1/cache/{ns}/{key}`, `POST …/{ns}/batch/get` | `cache:read` in `ns` |
 * | `PUT /api/v1/cache/{ns}/{key}`, `POST …/{ns}/batch/set` | `cache:write` in `ns` |
 * | `DELETE /api/v1/cache/{ns}/{key}` | `cache:delete` in `ns` |
 * | `POST /api/v1/purge`, `POST /api/v1/invalidations` | `cache:delete` (`cache:flush` for a prefix) in the body's namespace |
 * | `POST /api/v1/jobs/warm`, `GET`/`DELETE /api/v1/jobs/{id}` | `cache:write` in the job's namespace, checked by the route |
 * | `GET /api/v1/purge/stream` | `cache:read` in `*` (it shows every namespace's purges) |
 * | `POST /api/v1/purge/applied` | `cache:read` in `*` (an edge reporting what it applied of that stream) |
 * | `GET /api/v1/namespaces` | `metrics:read` |
 * | `GET /api/v1/namespaces/{ns}`, `GET …/{ns}/stats` | `metrics:read` in `ns` |
 * | `POST /api/v1/namespaces/{ns}/flush` | `cache:flush` in `ns` |
 * | `POST /api/v1/reload` | `cache:reload` in `*` (admin) |
 * | `GET /api/v1/purges` (the poll of the purge log) | `purge:read` in `*` |
 * | `POST`, `PUT`, `DELETE`, `GET /api/v1/locks/{ns}/{name}…` | `cache:lock` in `ns` |
 * | `/upstash/{ns}…` | checked per command by `shared/upstash/http.ts` (`cache:read`, `cache:write`, `cache:delete`, `cache:flush` in `ns`) |
 * | anything else | a valid token (then 404) |
 */
export function restAccess(method: string, pathname: string): Access {
  // The hot path first: entry reads and writes.
  if (pathname.startsWith('/api/v1/cache/')) {
    const cache = cacheAccess(method, pathname);
    if (cache) return cache;
  }
  if (openPaths.has(pathname) || pathname.startsWith('/docs/') || pathname.startsWith('/dashboard/assets/')) {
    return 'open';
  }
  // The Upstash protocol checks the token and each command's grant itself, answering in its own error shape.
  if (pathname.startsWith('/upstash/')) return 'open';
  if (
    pathname === '/metrics' ||
    pathname === '/health/metrics' ||
    pathname === '/api/v1/stats' ||
    pathname === '/api/v1/edges/stats'
  ) {
    return { scope: 'metrics:read' };
  }
  if (pathname === '/api/v1/purge/stream' || pathname === '/api/v1/purge/applied') {
    return { scope: 'cache:read', namespace: allNamespaces };
  }
  if (pathname === '/api/v1/namespaces') return { scope: 'metrics:read' };
  if (pathname === '/api/v1/reload') return { scope: 'cache:reload', namespace: allNamespaces };
  const listing = /^\/api\/v1\/namespaces\/([^/]*)\/keys$/.exec(pathname);
  if (listing) return { scope: 'cache:read', namespace: decodeSegment(listing[1]!) };
  const managed = /^\/api\/v1\/namespaces\/([^/]*)(\/stats|\/flush)?$/.exec(pathname);
  if (managed) {
    const namespace = decodeSegment(managed[1]!);
    return managed[2] === '/flush' ? { scope: 'cache:flush', namespace } : { scope: 'metrics:read', namespace };
  }
  if (pathname === '/api/v1/purges') return { scope: 'purge:read', namespace: allNamespaces };
  const lock = /^\/api\/v1\/locks\/([^/]*)\//.exec(pathname);
  if (lock) return { scope: 'cache:lock', namespace: decodeSegment(lock[1]!) };
  return 'authenticated';
}

/** The grant a `/api/v1/cache/{ns}/…` request needs, or undefined (then only a valid token, and the route answers). */
function cacheAccess(method: string, pathname: string): Access | undefined {
  const cache = /^\/api\/v1\/cache\/([^/]*)\/(.*)$/.exec(pathname);
  if (!cache) return undefined;
  const namespace = decodeSegment(cache[1]!);
  const rest = cache[2]!;
  if (method === 'POST' && rest === 'batch/get') return { scope: 'cache:read', namespace };
  if (method === 'POST' && rest === 'batch/set') return { scope: 'cache:write', namespace };
  if (method === 'GET' || method === 'HEAD') return { scope: 'cache:read', namespace };
  if (method === 'PUT') return { scope: 'cache:write', namespace };
  if (method === 'DELETE') return { scope: 'cache:delete', namespace };
  return undefined;
}

// A segment that does not decode cannot name a granted namespace; the route answers CACHE_004 for admins.
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const principals = new WeakMap<Request, Principal>();

/** The verified caller of a request, or undefined when authentication is off. */
export function principalOf(c: Context): Principal | undefined {
  return principals.get(c.req.raw);
}

/**
 * The `operation` label of a REST request, as the routes count it in
 * `strata_requests_total`, from its method and path alone (a refused request
 * never reaches its route).
 */
export function restOperation(method: string, pathname: string): string {
  if (pathname === '/api/v1/purge') return 'purge';
  if (pathname === '/api/v1/purge/stream') return 'purge_stream';
  if (pathname === '/api/v1/purge/applied') return 'purge_applied';
  if (pathname === '/api/v1/invalidations') return 'invalidate';
  if (pathname === '/metrics' || pathname === '/health/metrics') return 'metrics';
  if (pathname === '/api/v1/stats' || pathname === '/api/v1/edges/stats') return 'stats';
  if (/^\/api\/v1\/namespaces\/[^/]*\/keys$/.test(pathname)) return 'list';
  const cache = /^\/api\/v1\/cache\/[^/]*\/(.*)$/.exec(pathname);
  if (cache) {
    if (method === 'GET' && cache[1]!.startsWith('pattern/')) return 'list';
    if (method === 'POST' && cache[1] === 'batch/get') return 'batch_get';
    if (method === 'POST' && cache[1] === 'batch/set') return 'batch_set';
    if (method === 'GET' || method === 'HEAD') return 'get';
    if (method === 'PUT') return 'set';
    if (method === 'DELETE') return 'delete';
  }
  return 'other';
}

/** A request the middleware refused (401 AUTH_001 or 403 AUTH_002); never carries the token. */
export interface Refusal {
  /** `X-Request-Id` of the request (echoed or generated). */
  readonly requestId: string;
  /** {@link restOperation} of the request. */
  readonly operation: string;
  /** The namespace of the path, when it names one. */
  readonly namespace?: string;
  /** The verified caller, when the token was valid but lacked a grant (403). */
  readonly serviceId?: string;
  readonly code: 'AUTH_001' | 'AUTH_002';
  readonly status: 401 | 403;
  /** Milliseconds from the middleware's start to the refusal. */
  readonly durationMs: number;
}

/**
 * Verifies `Authorization: Bearer <JWT>` and checks the grant of
 * {@link restAccess} (or `access`, for tests and other surfaces); calls
 * `onRefused` once for every 401 and 403, so refusals are logged and counted.
 *
 * Errors: 401 AUTH_001 with `WWW-Authenticate: Bearer` (RFC 6750 §3) for a
 * missing or bad token; 403 AUTH_002 for a missing scope or namespace;
 * 503 CACHE_005 when the JWKS cannot be fetched.
 */
export function authMiddleware(
  verifier: Verifier,
  access = restAccess,
  onRefused?: (refusal: Refusal) => void,
): MiddlewareHandler {
  return async (c, next) => {
    const pathname = new URL(c.req.url).pathname;
    const needs = access(c.req.method, pathname);
    if (needs === 'open') return next();
    const started = performance.now();
    let principal: Principal | undefined;
    try {
      const token = bearerToken(c.req.header('Authorization'));
      if (!token) {
        c.header('WWW-Authenticate', 'Bearer realm="strata"');
        throw unauthenticated();
      }
      try {
        principal = await verifier(token);
      } catch (error) {
        c.header('WWW-Authenticate', 'Bearer realm="strata", error="invalid_token"');
        throw error;
      }
      if (needs !== 'authenticated') authorize(principal, needs.scope, needs.namespace);
    } catch (error) {
      if (onRefused && error instanceof CacheError && (error.code === 'AUTH_001' || error.code === 'AUTH_002')) {
        onRefused({
          requestId: (c as Context<AppEnv>).get('requestId') ?? '',
          operation: restOperation(c.req.method, pathname),
          namespace: needs !== 'authenticated' && needs.namespace !== allNamespaces ? needs.namespace : undefined,
          serviceId: principal?.serviceId,
          code: error.code,
          status: error.code === 'AUTH_001' ? 401 : 403,
          durationMs: performance.now() - started,
        });
      }
      throw error;
    }
    principals.set(c.req.raw, principal);
    return next();
  };
}

/**
 * Checks a grant for a namespace named in the body (purge, invalidation);
 * passes when authentication is off.
 * @throws CacheError AUTH_002 (403).
 */
export function authorizeBody(c: Context, scope: Scope, namespace: string): void {
  const principal = principalOf(c);
  if (principal) authorize(principal, scope, namespace);
}

/**
 * Logs and counts refusals: one `strata_requests_total{tier="none",
 * result="refused"}` and one request-log line per refusal, with the request
 * id, the caller's service id when the token was valid (403), and the code;
 * never the token.
 */
export function recordRefusals(metrics: RequestMetrics, log?: RequestLog): (refusal: Refusal) => void {
  return (r) => {
    metrics.request(r.operation, 'none', 'refused', r.durationMs / 1000);
    log?.({
      request_id: r.requestId,
      operation: r.operation,
      ...(r.namespace === undefined ? {} : { namespace: r.namespace }),
      ...(r.serviceId === undefined ? {} : { service_id: r.serviceId }),
      tier: 'none',
      result: 'refused',
      status: r.status,
      duration_ms: r.durationMs,
      error_code: r.code,
    });
  };
}
