import { Hono } from 'hono';
import { mountApiDocs } from '../shared/api-docs.ts';
import type { Verifier } from '../shared/auth.ts';
import { authMiddleware, recordRefusals } from '../shared/auth-http.ts';
import { CacheError } from '../shared/errors.ts';
import { installErrorHandling, type RequestLog, requestIdMiddleware } from '../shared/http.ts';
import { rejectPathTricks } from '../shared/input-guard.ts';
import type { RequestMetrics } from '../shared/metrics.ts';
import { rejectUnknownQuery } from '../shared/query-guard.ts';
import { isTracingEnabled, traceServerRequests } from '../shared/tracing.ts';
import type { CacheService } from './cache-service.ts';
import { isDashboardPath } from './dashboard/paths.ts';
import { dashboardRoutes } from './dashboard/routes.ts';
import type { StatsCollector } from './dashboard/stats-collector.ts';
import type { InProcessSource } from './invalidation/in-process-source.ts';
import { invalidationRoutes } from './invalidation/route.ts';
import { warmJobRoutes } from './jobs/routes.ts';
import type { WarmJobs } from './jobs/warm-jobs.ts';
import type { WarmOnStart } from './jobs/warm-on-start.ts';
import { listingRoutes } from './listing/routes.ts';
import { LockService, lockStoreFor } from './locks/lock-service.ts';
import type { NamespaceReports } from './namespaces/report.ts';
import type { PurgeBus } from './purge/bus.ts';
import type { Reloader } from './reload.ts';
import { cacheRoutes } from './routes/cache.ts';
import { lockRoutes } from './routes/locks.ts';
import { namespaceRoutes } from './routes/namespaces.ts';
import { purgeAppliedRoutes } from './routes/purge-applied.ts';
import { purgeStreamPath, purgeStreamRoutes } from './routes/purge-stream.ts';
import { purgePollRoutes } from './routes/purges.ts';
import { originUpstashRoutes } from './upstash/routes.ts';

export interface OriginAppDeps {
  readonly service: CacheService;
  readonly bus: PurgeBus;
  readonly metrics: RequestMetrics;
  /** Largest value, bytes. */
  readonly maxValueBytes: number;
  /** Milliseconds between purge-stream heartbeats. */
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
  /** The in-process invalidation source, whose `POST /api/v1/invalidations` is served when there is no Kafka. */
  readonly invalidations?: InProcessSource;
  /** Takes an edge's report of the purge-log position it applied (the staleness canary); absent = reports are taken and dropped. */
  readonly onPurgeApplied?: (edgeId: string, position: string) => void;
  /** Extra fields of the `/ready` answer (the staleness canary's last probe); read per request. */
  readonly readyDetail?: () => Record<string, unknown>;
  /** Cross-region state for `/ready` (`region`); absent = not shown. */
  readonly regions?: { readiness(): unknown };
  /** The dashboard's collector, sample interval (seconds) and the in-memory tiers' eviction policy; absent = no dashboard routes. */
  readonly dashboard?: {
    readonly stats: StatsCollector;
    readonly sampleSeconds: number;
    readonly evictionPolicy?: string;
  };
  /** Namespace stats and versions; absent = no management routes. */
  readonly reports?: NamespaceReports;
  /** Serves `POST /api/v1/reload` when present. */
  readonly reloader?: Reloader;
  /** Warm jobs (`/api/v1/jobs/…`) and the start-up warming `/ready` waits for; absent = no job routes. */
  readonly warm?: {
    readonly jobs: WarmJobs;
    readonly allowedOrigins: ReadonlySet<string>;
    readonly onStart?: WarmOnStart | undefined;
  };
}

/** The dashboard's view of the ten most recent warm jobs: progress without the failed items. */
async function dashboardJobs(jobs: WarmJobs): Promise<unknown[]> {
  return (await jobs.recent(10)).map(({ failed_items: _, ...job }) => job);
}

/**
 * Builds the origin's Hono app from injected parts; its whole route table
 * is here: `/health` (liveness), `/ready` (writes durable: store reachable
 * and breaker closed; 503 CACHE_005 with the breaker state otherwise),
 * `/metrics`, `/openapi.json` and `/docs`, then one sub-app each for the
 * cache REST routes (`routes/cache.ts`), the locks (`routes/locks.ts`), the purge stream
 * (`routes/purge-stream.ts`), in-process invalidations
 * (`invalidation/route.ts`), the dashboard (`dashboard/routes.ts`) and the
 * management routes (`routes/namespaces.ts`: flush, stats, reload).
 * `origin/server.ts` wires config and starts it; gRPC paths on the same port
 * never reach this app (`grpc/same-port.ts` dispatches them first).
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
  app.use('/api/*', rejectUnknownQuery);
  if (deps.auth) app.use('*', authMiddleware(deps.auth, undefined, recordRefusals(deps.metrics, deps.log)));

  // ICD §6.2 names the same three endpoints /health/live, /health/ready and /health/metrics.
  app.on('GET', ['/health', '/health/live'], (c) => c.json({ status: 'ok' }));
  mountApiDocs(app, { side: 'origin', maxValueBytes: deps.maxValueBytes });
  // Ready = a write now would be durable in the store: Redis answers and the breaker is closed.
  app.on('GET', ['/ready', '/health/ready'], async (c) => {
    const store = deps.service.store;
    // A cold replica waits for its region's start-up warming (or its deadline) before taking traffic.
    const warming = deps.warm?.onStart;
    if (warming && !warming.ready) {
      throw new CacheError('CACHE_005', 'Start-up warming in progress', { details: { warming: warming.status } });
    }
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
    // A replica whose tail of the purge log is broken cannot tell its edges about other replicas' writes.
    const tail = deps.bus.health();
    if (!tail.tailLive) {
      throw new CacheError('CACHE_005', 'Purge log tail not live', {
        details: { store: store.kind, ...state, tail_age_ms: Math.round(tail.tailAgeMs) },
      });
    }
    return c.json({
      status: 'ready',
      store: store.kind,
      ...state,
      edges: deps.bus.subscribers,
      seq: deps.bus.health().seq,
      ...(deps.regions ? { region: deps.regions.readiness() } : {}),
      ...(warming ? { warming: warming.status } : {}),
      ...deps.readyDetail?.(),
    });
  });
  app.on('GET', ['/metrics', '/health/metrics'], async (c) => {
    const text = await deps.metrics.render();
    if (text === null) throw new CacheError('CACHE_001', 'No metrics on this runtime');
    return c.text(text, 200, { 'Content-Type': deps.metrics.contentType });
  });

  const { maxValueBytes } = deps;
  // Before the cache routes: `/api/v1/cache/{namespace}/pattern/{pattern}` is a listing, not a key.
  app.route(
    '/',
    listingRoutes({
      store: deps.service.store,
      floor: (namespace) => deps.service.namespaces.floor(namespace),
      metrics: deps.metrics,
      log: deps.log,
    }),
  );
  app.route('/', cacheRoutes({ service: deps.service, metrics: deps.metrics, maxValueBytes, now, log: deps.log }));
  app.route(
    '/',
    lockRoutes({
      locks: deps.locks ?? new LockService({ store: lockStoreFor(deps.service.store) }),
      metrics: deps.metrics,
      tier: deps.service.store.kind,
      log: deps.log,
    }),
  );
  app.route('/', purgeStreamRoutes(deps.bus, deps.heartbeatMs));
  app.route('/', purgePollRoutes(deps.bus));
  app.route('/', purgeAppliedRoutes(deps.onPurgeApplied ?? (() => {})));
  app.route(
    '/',
    originUpstashRoutes({
      service: deps.service,
      auth: deps.auth,
      metrics: deps.metrics,
      log: deps.log,
      maxValueBytes,
      now,
    }),
  );
  if (deps.invalidations) app.route('/', invalidationRoutes(deps.invalidations, maxValueBytes));
  if (deps.dashboard)
    app.route(
      '/',
      dashboardRoutes(
        deps.dashboard.stats,
        deps.dashboard.sampleSeconds,
        deps.dashboard.evictionPolicy,
        deps.warm ? () => dashboardJobs(deps.warm!.jobs) : undefined,
      ),
    );
  if (deps.warm) {
    app.route(
      '/',
      warmJobRoutes({
        jobs: deps.warm.jobs,
        allowedOrigins: deps.warm.allowedOrigins,
        tier: deps.service.store.kind,
        metrics: deps.metrics,
        log: deps.log,
      }),
    );
  }
  if (deps.reports) {
    app.route('/', namespaceRoutes({ service: deps.service, reports: deps.reports, reloader: deps.reloader }));
  }
  return app;
}
