import { Hono } from 'hono';
import { mountApiDocs } from '../shared/api-docs.ts';
import type { Verifier } from '../shared/auth.ts';
import { authMiddleware } from '../shared/auth-http.ts';
import { CacheError } from '../shared/errors.ts';
import { installErrorHandling, type RequestLog, requestIdMiddleware } from '../shared/http.ts';
import { rejectPathTricks } from '../shared/input-guard.ts';
import type { RequestMetrics } from '../shared/metrics.ts';
import { isTracingEnabled, traceServerRequests } from '../shared/tracing.ts';
import type { CacheService } from './cache-service.ts';
import { isDashboardPath } from './dashboard/paths.ts';
import { LockService, lockStoreFor } from './locks/lock-service.ts';
import type { PurgeHub } from './purge-hub.ts';
import { mountCacheRoutes } from './routes/cache.ts';
import { mountLockRoutes } from './routes/locks.ts';
import { mountPurgeStream, purgeStreamPath } from './routes/purge-stream.ts';

export interface OriginAppDeps {
  readonly service: CacheService;
  readonly hub: PurgeHub;
  readonly metrics: RequestMetrics;
  /** Largest value, bytes. */
  readonly maxValueBytes: number;
  /** Milliseconds between purge-stream keep-alives. */
  readonly heartbeatMs: number;
  readonly now?: () => number;
  /** Unexpected (non-CacheError) failures, for the log. */
  readonly onUnexpectedError?: (error: unknown) => void;
  /** One record per finished cache request. */
  readonly log?: RequestLog;
  /** Open a SERVER span per API request; default: whether an OpenTelemetry SDK is recording now. */
  readonly tracing?: boolean;
  /** JWT verifier (docs/security.md); absent or null = authentication off. */
  readonly auth?: Verifier | null;
  /** Distributed locks (docs/locks.md); default: locks on the service's store, without metrics. */
  readonly locks?: LockService;
}

/**
 * Builds the origin's Hono app from injected parts (STYLE.md §2):
 * the REST contract of ARCHITECTURE.md §2, the purge stream, and
 * `/health` (liveness), `/ready` (writes durable: store reachable and breaker
 * closed; 503 CACHE_005 with the breaker state otherwise), `/metrics`.
 * `origin/main.ts` wires config and starts it.
 */
export function createOriginApp(deps: OriginAppDeps): Hono<{ Variables: { requestId: string } }> {
  const app = new Hono<{ Variables: { requestId: string } }>();
  const now = deps.now ?? Date.now;
  if (deps.tracing ?? isTracingEnabled()) {
    app.use(
      '/api/*',
      traceServerRequests('origin', (path) => path === purgeStreamPath || isDashboardPath(path)),
    );
  }
  app.use('*', requestIdMiddleware);
  installErrorHandling(app, deps.onUnexpectedError);
  app.use('/api/*', rejectPathTricks);
  if (deps.auth) app.use('*', authMiddleware(deps.auth));

  // ICD §6.2 names the same three endpoints /health/live, /health/ready and /health/metrics.
  app.on('GET', ['/health', '/health/live'], (c) => c.json({ status: 'ok' }));
  mountApiDocs(app);
  // Ready = a write now would be durable in the store: Redis answers and the breaker is closed.
  app.on('GET', ['/ready', '/health/ready'], async (c) => {
    const store = deps.service.store;
    const health = store.health();
    const state = health.breaker ? { breaker: health.breaker, dirty: health.dirty } : {};
    try {
      await store.ping();
    } catch (error) {
      throw new CacheError('CACHE_005', 'Store unavailable', {
        details: { store: store.kind, ...state },
        cause: error,
      });
    }
    return c.json({ status: 'ready', store: store.kind, ...state, edges: deps.hub.subscribers, seq: deps.hub.seq });
  });
  app.on('GET', ['/metrics', '/health/metrics'], async (c) => {
    const text = await deps.metrics.render();
    if (text === null) throw new CacheError('CACHE_001', 'No metrics on this runtime');
    return c.text(text, 200, { 'Content-Type': deps.metrics.contentType });
  });

  mountCacheRoutes(app, {
    service: deps.service,
    metrics: deps.metrics,
    maxValueBytes: deps.maxValueBytes,
    now,
    log: deps.log,
  });
  mountLockRoutes(app, {
    locks: deps.locks ?? new LockService({ store: lockStoreFor(deps.service.store) }),
    metrics: deps.metrics,
    tier: deps.service.store.kind,
    log: deps.log,
  });
  mountPurgeStream(app, deps.hub, deps.heartbeatMs);
  return app;
}
