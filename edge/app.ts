import { type Context, Hono } from 'hono';
import { mountApiDocs } from '../shared/api-docs.ts';
import type { Verifier } from '../shared/auth.ts';
import { purgeScope } from '../shared/auth.ts';
import { authMiddleware, authorizeBody, principalOf, recordRefusals } from '../shared/auth-http.ts';
import { CacheError } from '../shared/errors.ts';
import { etagFor, headers } from '../shared/headers.ts';
import {
  type AppEnv,
  cachePath,
  installErrorHandling,
  instrument,
  jsonBody,
  jsonSizeLimit,
  namespacePath,
  type RequestLog,
  readResponse,
  requestIdMiddleware,
  valueSizeLimit,
  writeOptions,
} from '../shared/http.ts';
import { rejectPathTricks } from '../shared/input-guard.ts';
import {
  freshness,
  graceFields,
  parseGrace,
  readPreferences,
  requestsNoCache,
  staleReasonOf,
} from '../shared/lifecycle.ts';
import { noMetrics, type RequestMetrics } from '../shared/metrics.ts';
import { rejectUnknownQuery } from '../shared/query-guard.ts';
import { purgeRequestSchema, putResponseSchema } from '../shared/schemas.ts';
import { isTracingEnabled, traceServerRequests } from '../shared/tracing.ts';
import type { EdgeCache } from './core/edge-cache.ts';
import { mountLockPassThrough } from './locks.ts';
import { errorFrom, errorOf, type OriginClient } from './origin-client.ts';
import { rateLimitMiddleware, type TokenBucketLimiter } from './rate-limit.ts';
import { edgeUpstashRoutes } from './upstash/routes.ts';

export interface EdgeAppDeps {
  readonly cache: EdgeCache;
  readonly origin: OriginClient;
  /** Largest value accepted on a write, bytes. */
  readonly maxValueBytes: number;
  readonly metrics?: RequestMetrics;
  readonly now?: () => number;
  /** Whether the purge subscription is up; `/ready` answers 503 while it is not. */
  readonly subscribed?: () => boolean | Promise<boolean>;
  /** Why the purge source last failed, shown by `/ready` while it is down. */
  readonly purgeError?: () => string | undefined;
  /** Told after this edge relayed a purge or a batch write that the origin acknowledged. */
  readonly onRelayedChange?: () => void;
  readonly onUnexpectedError?: (error: unknown) => void;
  /** One record per finished request. */
  readonly log?: RequestLog;
  /** Open a SERVER span per API request; default: whether an OpenTelemetry SDK is recording now. */
  readonly tracing?: boolean;
  /** JWT verifier (docs/security.md); absent or null = authentication off. */
  readonly auth?: Verifier | null;
  /** Per-caller rate limit of the API (`EDGE_RATE_LIMIT_RPS`); absent = none. */
  readonly rateLimiter?: TokenBucketLimiter;
  /** The lease on the tier (`EDGE_LEASE_MS`), for the Upstash protocol's read-your-writes; default 3000. */
  readonly leaseMs?: number;
  /**
   * Reads a write's value (`PUT`) from the request, bytes; default
   * `c.req.arrayBuffer()`. The Node adapter reads a declared-length body
   * straight from the socket into one buffer (`platform/node/request-body.ts`).
   */
  readonly readBody?: (c: Context<Env>) => Promise<Uint8Array<ArrayBuffer>>;
}

type Env = AppEnv;

const utf8 = new TextDecoder();

/**
 * Builds the edge's Hono app (runtime-free; `edge/build-edge.ts` wires it and
 * the adapters in `edge/adapters/` start it). Same REST surface as the origin
 * (ARCHITECTURE.md §2): reads are served from the near-user tier or filled
 * through coalesced origin loads; writes, deletes, batches and purges go to
 * the origin.
 *
 * Read headers: `X-Cache` (HIT at the edge, MISS when filled, STALE when the
 * origin answered degraded), `X-Cache-Tier`, `ETag`, `Age`, `X-Request-Id`.
 */
export function createEdgeApp(deps: EdgeAppDeps): Hono<Env> {
  const app = new Hono<Env>();
  const { cache, origin } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const now = deps.now ?? Date.now;
  const readBody = deps.readBody ?? (async (c: Context<Env>) => new Uint8Array(await c.req.arrayBuffer()));
  if (deps.tracing ?? isTracingEnabled()) app.use('/api/*', traceServerRequests('edge'));
  app.use('*', requestIdMiddleware);
  installErrorHandling(app, deps.onUnexpectedError);
  // Before any route: unauthenticated traffic stops here and never reaches the origin.
  app.use('/api/*', rejectPathTricks);
  app.use('/api/*', rejectUnknownQuery);
  if (deps.auth) app.use('*', authMiddleware(deps.auth, undefined, recordRefusals(metrics, deps.log)));
  if (deps.rateLimiter) app.use('/api/*', rateLimitMiddleware(deps.rateLimiter, now));

  const timed = instrument(metrics, deps.log);

  // ICD §6.2 names the same three endpoints /health/live, /health/ready and /health/metrics.
  app.on('GET', ['/health', '/health/live'], (c) => c.json({ status: 'ok' }));
  mountApiDocs(app, { side: 'edge', maxValueBytes: deps.maxValueBytes });
  app.on('GET', ['/ready', '/health/ready'], async (c) => {
    if (deps.subscribed && !(await deps.subscribed())) {
      const error = deps.purgeError?.();
      throw new CacheError('CACHE_005', 'Purge stream not connected', {
        details: { origin: origin.baseUrl, ...(error ? { error } : {}) },
      });
    }
    return c.json({ status: 'ready', entries: cache.tier.size, bytes: cache.tier.bytes });
  });
  app.on('GET', ['/metrics', '/health/metrics'], async (c) => {
    const text = await metrics.render();
    if (text === null) throw new CacheError('CACHE_001', 'No metrics on this runtime');
    return c.text(text, 200, { 'Content-Type': metrics.contentType });
  });

  app.get('/api/v1/cache/:namespace/:key', (c) =>
    timed(c, 'get', async () => {
      const { namespace, key } = cachePath(c, 'get');
      const read = await cache.read(namespace, key, c.get('requestId'), {
        ...readPreferences(c.req.header(headers.prefer)),
        strong: requestsNoCache(c.req.header(headers.cacheControl)),
      });
      if (read.kind === 'hit') {
        const t = now();
        const fresh = freshness(read.entry, t) === 'fresh';
        const tier = read.from === undefined ? 'edge' : `edge-${read.from}`;
        const res = readResponse(c, read.entry, {
          status: fresh ? 'HIT' : 'STALE',
          tier,
          degraded: false,
          nowMs: t,
          staleReason: fresh ? undefined : staleReasonOf(read.entry),
          strong: read.entry.strong,
        });
        return { res, tier, result: fresh ? 'hit' : 'stale' };
      }
      if (read.kind === 'stale-if-error') {
        const res = readResponse(c, read.entry, {
          status: 'STALE',
          tier: 'edge',
          degraded: false,
          nowMs: now(),
          staleReason: 'error',
        });
        return { res, tier: 'edge', result: 'stale' };
      }
      if (read.kind === 'miss') {
        c.header(headers.cache, 'MISS');
        if (read.lease) c.header(headers.lease, read.lease);
        throw new CacheError('CACHE_001', undefined, { details: { key, operation: 'get' } });
      }
      const status = read.read.status === 'STALE' ? 'STALE' : 'MISS';
      return {
        res: readResponse(c, read.entry, {
          status,
          tier: read.read.tier,
          degraded: read.read.degraded,
          nowMs: now(),
          staleReason: read.read.staleReason,
          lease: read.lease,
          strong: read.read.strong,
        }),
        tier: read.read.tier,
        result: status === 'STALE' ? 'stale' : 'miss',
      };
    }),
  );

  app.put('/api/v1/cache/:namespace/:key', valueSizeLimit(deps.maxValueBytes), (c) =>
    timed(c, 'set', async () => {
      const { namespace, key } = cachePath(c, 'set');
      const { tags, grace } = writeOptions(c, 'set'); // reject bad ttl/tags/Cache-Control here; the origin re-validates
      const value = await readBody(c);
      const contentType = c.req.header('Content-Type') || 'application/octet-stream';
      const ticket = cache.ledger.begin();
      const res = await origin.send(
        'PUT',
        originPath(c.req.url),
        {
          'Content-Type': contentType,
          [headers.requestId]: c.get('requestId'),
          ...relayed(headers.encrypt, c.req.header(headers.encrypt)),
          ...relayed(headers.compress, c.req.header(headers.compress)),
          ...relayed(headers.cacheControl, c.req.header(headers.cacheControl)),
          ...relayed(headers.lease, c.req.header(headers.lease)),
        },
        value,
      );
      if (res.status !== 200) throw errorOf(res);
      const body = putResponseSchema.parse(JSON.parse(utf8.decode(res.body)));
      cache.storeWrite(
        ticket,
        {
          value,
          contentType,
          version: body.version,
          createdAtMs: body.created_at_ms ?? now(),
          expiresAtMs: body.expires_at_ms,
          tags,
          tier: 'edge',
          degraded: res.header(headers.degraded) === '1',
          status: 'HIT',
          ...graceFields(res.header(headers.grace) !== null ? parseGrace(res.header(headers.grace)) : grace),
          ...(res.header(headers.consistency) === 'strong' ? { strong: true } : {}),
        },
        namespace,
        key,
      );
      return { res: c.json(body, 200, { [headers.etag]: etagFor(body.version) }), tier: 'edge', result: 'ok' };
    }),
  );

  app.delete('/api/v1/cache/:namespace/:key', (c) =>
    timed(c, 'delete', async () => {
      const { namespace, key } = cachePath(c, 'delete');
      const res = await origin.request(originPath(c.req.url), {
        method: 'DELETE',
        headers: { [headers.requestId]: c.get('requestId') },
      });
      if (res.status !== 200) throw await errorFrom(res);
      const body = (await res.json()) as { version: number };
      cache.forget(namespace, key, body.version);
      return { res: c.json(body), tier: 'edge', result: 'ok' };
    }),
  );

  // Batches and purges are relayed as they are; the purge stream brings the effect back to every edge.
  const forward = (operation: string, validate: (c: Context<Env>) => unknown) => (c: Context<Env>) =>
    timed(c, operation, async () => {
      await validate(c);
      const res = await origin.request(originPath(c.req.url), {
        method: 'POST',
        body: await c.req.arrayBuffer(),
        headers: {
          'Content-Type': c.req.header('Content-Type') ?? '',
          [headers.requestId]: c.get('requestId'),
          ...relayed(headers.cacheControl, c.req.header(headers.cacheControl)),
        },
      });
      if (res.status !== 200) throw await errorFrom(res);
      if (operation !== 'batch_get') deps.onRelayedChange?.();
      return {
        res: new Response(res.body, { status: 200, headers: { 'Content-Type': 'application/json' } }),
        tier: 'none',
        result: 'ok',
      };
    });
  app.post(
    '/api/v1/cache/:namespace/batch/get',
    jsonSizeLimit(deps.maxValueBytes),
    forward('batch_get', (c) => namespacePath(c, 'batch_get')),
  );
  app.post(
    '/api/v1/cache/:namespace/batch/set',
    jsonSizeLimit(deps.maxValueBytes),
    forward('batch_set', (c) => namespacePath(c, 'batch_set')),
  );
  app.post(
    '/api/v1/purge',
    jsonSizeLimit(deps.maxValueBytes),
    // The origin sees the edge's credential, so the caller's namespace grant is checked here.
    forward('purge', async (c) => {
      if (!principalOf(c)) return;
      const body = await jsonBody(c, purgeRequestSchema, 'purge');
      authorizeBody(c, purgeScope(body), body.namespace);
    }),
  );
  mountLockPassThrough(app, origin, timed);

  // Management routes go to the origin uncached (the grant was checked above); a flush comes back
  // to every edge through the purge stream as a namespace-wide floor.
  const relay = (operation: string) => (c: Context<Env>) =>
    timed(c, operation, async () => {
      if (c.req.param('namespace') !== undefined) namespacePath(c, operation);
      const res = await origin.request(originPath(c.req.url), {
        method: c.req.method,
        headers: { [headers.requestId]: c.get('requestId') },
      });
      if (res.status !== 200) throw await errorFrom(res);
      return {
        res: new Response(res.body, {
          status: 200,
          headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
        }),
        tier: 'none',
        result: 'ok',
      };
    });
  app.post('/api/v1/namespaces/:namespace/flush', relay('flush'));
  app.get('/api/v1/namespaces', relay('stats'));
  app.get('/api/v1/namespaces/:namespace', relay('version'));
  app.get('/api/v1/namespaces/:namespace/stats', relay('stats'));
  app.get('/api/v1/namespaces/:namespace/keys', relay('list'));
  // Registered as `…/:key/:pattern`, not `…/pattern/:pattern`: a static segment where the entry route has its
  // `:key` parameter makes Hono's SmartRouter give up its RegExpRouter for the slower TrieRouter on every request.
  const listPattern = relay('list');
  app.get('/api/v1/cache/:namespace/:key/:pattern', (c) =>
    c.req.param('key') === 'pattern' ? listPattern(c) : c.notFound(),
  );
  app.post('/api/v1/reload', relay('reload'));
  app.route('/', edgeUpstashRoutes({ ...deps, leaseMs: deps.leaseMs ?? 3000, now }));
  return app;
}

/** Relays a write option header (`X-Cache-Encrypt`, `X-Cache-Compress`) to the origin, which validates it. */
function relayed(name: string, value: string | undefined): Record<string, string> {
  return value === undefined ? {} : { [name]: value };
}

/** The path and query of an incoming URL, to send on to the origin unchanged. */
function originPath(url: string): string {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
}
