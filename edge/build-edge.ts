import type { Hono } from 'hono';
import { authOptionsFromConfig, createVerifier } from '../shared/auth.ts';
import type { EdgeConfig } from '../shared/config.ts';
import type { AppEnv, RequestLog } from '../shared/http.ts';
import type { RequestMetrics } from '../shared/metrics.ts';
import { purgeCanaryNamespace } from '../shared/purge-report.ts';
import type { StreamMessage } from '../shared/schemas.ts';
import { isTracingEnabled } from '../shared/tracing.ts';
import { createEdgeApp, type EdgeAppDeps } from './app.ts';
import { EdgeCache, type RevalidationOutcome, type SharedTierOutcome } from './core/edge-cache.ts';
import { Lease } from './core/lease.ts';
import { memoryTier } from './core/memory-tier.ts';
import type { PurgeHandlers, PurgeSubscription } from './core/purge-source.ts';
import type { EdgeTier, SharedEdgeTier } from './core/tier.ts';
import { createFastHit, type FastHit } from './fast-hit.ts';
import { OriginClient } from './origin-client.ts';
import type { OriginTransport } from './origin-transport.ts';
import { purgeAppliedReporter } from './purge-report.ts';
import { pollPurgeSource } from './purge-sources/poll.ts';
import { ssePurgeSource } from './purge-sources/sse.ts';
import { rateLimiterFromConfig } from './rate-limit.ts';

/** What an edge counts beyond requests; a runtime that has no metrics passes none. */
export interface EdgeMetrics extends RequestMetrics {
  /** Count one coalesced origin load. */
  originLoad(): void;
  /**
   * Count one purge-stream message applied, how many entries it removed, and
   * (for purges) the lag from the origin's acknowledgement (`ts`, Unix ms).
   */
  purgeApplied(type: string, removed: number, acknowledgedAtMs?: number): void;
  /** Count one purge-stream reconnect. */
  reconnect(): void;
  /** Count one lapse of the edge's lease (a lease that held was found expired). */
  leaseLapse(): void;
  /** Count one per-key revalidation with the origin while the lease was lapsed, by outcome. */
  revalidation(outcome: RevalidationOutcome): void;
  /** Count one shared-tier lookup by outcome (`hit`, `miss`), or one failed call to it (`error`); runtimes without a shared tier may leave it out. */
  sharedTier?(outcome: SharedTierOutcome): void;
}

/** What a runtime's metrics may read from the edge besides its tier. */
export interface EdgeMetricsSources {
  /** Whether the purge source is in contact with the origin. */
  readonly subscribed: () => boolean;
  /** Milliseconds since the last confirmation with a live tail (the lease's age); null before the first. */
  readonly leaseAgeMs: () => number | null;
}

/** The part of a structured logger (pino's signature) the edge writes to. */
export interface EdgeLogger {
  debug(record: object, message: string): void;
  info(record: object, message: string): void;
  warn(record: object, message: string): void;
  error(record: object, message: string): void;
}

/** What differs per runtime; everything else `buildEdge` wires the same way everywhere. */
export interface EdgeRuntimeParts<M extends EdgeMetrics = EdgeMetrics> {
  /**
   * How the edge follows the purge log: `stream` holds the origin's purge
   * stream open (Node, Deno); `poll` reads `GET /api/v1/purges` on demand
   * before serving from the tier, at most every `EDGE_PURGE_POLL_MS`
   * (Workers isolates, which cannot hold a connection between requests).
   */
  readonly purgeSource: 'stream' | 'poll';
  /** The near-user tier; default: the memory tier with a budget of `EDGE_MAX_BYTES`. */
  readonly tier?: EdgeTier;
  /** A second tier behind `tier`, shared with other instances (the Workers Cache API); default: none. */
  readonly shared?: SharedEdgeTier;
  /** Builds the runtime's metrics over the tier and the purge source's state; default: none. */
  readonly metrics?: (tier: EdgeTier, sources: EdgeMetricsSources) => M;
  /** Clock, Unix ms (leases, confirmations); default `Date.now`. */
  readonly now?: () => number;
  /** Structured log of stream events and unexpected errors; default: none. */
  readonly logger?: EdgeLogger;
  /** One record per finished request; default: none. */
  readonly requestLog?: RequestLog;
  /** How entry reads and writes reach the origin; default: over the runtime's `fetch`. */
  readonly originTransport?: OriginTransport;
  /** How a write's value is read from the request; default: `c.req.arrayBuffer()`. */
  readonly readBody?: EdgeAppDeps['readBody'];
  /**
   * This edge's id in its reports to the origin when `EDGE_ID` is unset (the
   * adapter's default, shared with its other reports; a promise until it is
   * known); default: a random id per process.
   */
  readonly edgeId?: string | Promise<string>;
}

/** An edge wired from its config, not yet serving: the runtime adapter hands `app.fetch` to its server. */
export interface BuiltEdge<M extends EdgeMetrics = EdgeMetrics> {
  readonly app: Hono<AppEnv>;
  /** The hit fast path over the same parts, for the adapter to try before `app` (`edge/fast-hit.ts`); undefined with tracing on. */
  readonly fastHit: FastHit | undefined;
  readonly cache: EdgeCache;
  readonly origin: OriginClient;
  /** The runtime's metrics, when it gave a factory. */
  readonly metrics: M | undefined;
  /** The purge source's subscription. */
  readonly subscription: PurgeSubscription;
  /** The edge's lease on its tier. */
  readonly lease: Lease;
  /** Origin loads so far (after coalescing). */
  readonly originLoads: number;
  /** Stops the purge subscription (the adapter stops its own server). */
  close(): void;
}

/**
 * Wires one edge from its config and the runtime's parts: the tier, the
 * origin client (`ORIGIN_URL`, `EDGE_ORIGIN_TIMEOUT_MS`, `EDGE_ORIGIN_TOKEN`),
 * the purge source (stream or poll), the lease on the tier
 * (`EDGE_LEASE_MS`, `EDGE_PURGE_POLL_MS`), the edge cache
 * (`EDGE_MAX_TTL_SECONDS`), the JWT verifier and the rate limit; then builds
 * the Hono app (`edge/app.ts`). Runtime-free: the adapters in
 * `edge/adapters/<runtime>/` call it and only start what it returns.
 */
export function buildEdge<M extends EdgeMetrics = EdgeMetrics>(
  config: EdgeConfig,
  parts: EdgeRuntimeParts<M>,
): BuiltEdge<M> {
  const { logger } = parts;
  const now = parts.now ?? Date.now;
  const tier = parts.tier ?? memoryTier({ maxBytes: config.EDGE_MAX_BYTES, policy: config.EVICTION_POLICY });
  const token = config.EDGE_ORIGIN_TOKEN;
  const origin = new OriginClient({
    baseUrl: config.ORIGIN_URL,
    timeoutMs: config.EDGE_ORIGIN_TIMEOUT_MS,
    token,
    ...(parts.originTransport ? { transport: parts.originTransport } : {}),
  });
  const polling = parts.purgeSource === 'poll';
  let subscription: PurgeSubscription | undefined;
  let lastError: string | undefined;
  const subscribed = () => subscription?.connected ?? false;
  const lease: Lease = new Lease({
    leaseMs: config.EDGE_LEASE_MS,
    renewAfterMs: polling ? config.EDGE_PURGE_POLL_MS : config.EDGE_LEASE_MS,
    confirmation: () => subscription?.confirmation ?? null,
    renew: () => renew(),
    now,
    onLapse: () => {
      metrics?.leaseLapse();
      logger?.warn({ leaseMs: config.EDGE_LEASE_MS }, 'lease lapsed: renewing, revalidating hits meanwhile');
    },
  });
  const metrics = parts.metrics?.(tier, { subscribed, leaseAgeMs: () => lease.ageMs });
  let originLoads = 0;
  const cache = new EdgeCache({
    tier,
    load: (ns, key, requestId, preferences) => origin.get(ns, key, requestId, preferences),
    maxTtlMs: config.EDGE_MAX_TTL_SECONDS * 1000,
    negativeTtlMs: config.EDGE_NEGATIVE_TTL_MS,
    now,
    lease,
    revalidate: (ns, key, version, requestId, strong) => origin.revalidate(ns, key, version, requestId, strong),
    onRevalidation: (outcome) => metrics?.revalidation(outcome),
    shared: parts.shared,
    onSharedTier: (outcome) => metrics?.sharedTier?.(outcome),
    onOriginLoad: () => {
      originLoads++;
      metrics?.originLoad();
    },
  });
  const headers = token ? { Authorization: `Bearer ${token}` } : undefined;
  // A streaming edge tells its origin what it has applied, so the origin's staleness canary times the whole path.
  // A polling isolate does not: its requests end with the read they serve, and a report could be cut off mid-way.
  const report = polling
    ? undefined
    : purgeAppliedReporter({
        originUrl: config.ORIGIN_URL,
        edgeId: config.EDGE_ID ?? parts.edgeId ?? `edge-${crypto.randomUUID().slice(0, 8)}`,
        timeoutMs: config.EDGE_ORIGIN_TIMEOUT_MS,
        headers,
        onError: (error) => logger?.debug({ err: error }, 'applied-position report not taken'),
      });
  const applied = (message: StreamMessage) => {
    const removed = cache.apply(message);
    metrics?.purgeApplied(message.type, removed, message.type === 'purge' ? message.ts : undefined);
    if (message.type === 'purge' && message.namespace === purgeCanaryNamespace) report?.(message.position);
  };
  let caughtUp = false;
  const handlers: PurgeHandlers = {
    onPurge: applied,
    onReset: (message) => {
      applied(message);
      logger?.warn({ reason: message.reason }, 'purge log reset: tier dropped');
    },
    onStateChange: (connected) => {
      if (connected) {
        // The view of the purge log starts here: shared-tier entries filled before it are not trusted.
        if (!caughtUp) cache.distrustShared();
        caughtUp = true;
        lastError = undefined;
        metrics?.purgeApplied('hello', 0);
        if (subscription?.position) report?.(subscription.position);
        logger?.info({ origin: config.ORIGIN_URL, source: parts.purgeSource }, 'purge log followed');
      } else metrics?.reconnect();
    },
    onError: (error) => {
      lastError = error instanceof Error ? error.message : String(error);
      logger?.debug({ err: error }, 'purge source interrupted');
    },
  };
  let renew: () => Promise<boolean>;
  let refresh: (() => Promise<boolean>) | undefined;
  let expire: (() => void) | undefined;
  if (polling) {
    const poll = pollPurgeSource({
      originUrl: config.ORIGIN_URL,
      pollMs: config.EDGE_PURGE_POLL_MS,
      // Timers do not outlive a request in an isolate: reads poll when the view is due.
      background: false,
      timeoutMs: config.EDGE_ORIGIN_TIMEOUT_MS,
      headers,
      now,
    }).subscribe(handlers);
    subscription = poll;
    renew = () => poll.refresh();
    refresh = () => poll.refresh();
    expire = () => poll.expire();
  } else {
    const stream = ssePurgeSource({
      originUrl: config.ORIGIN_URL,
      idleTimeoutMs: config.EDGE_PURGE_IDLE_TIMEOUT_MS ?? config.EDGE_LEASE_MS,
      headers,
      now,
    }).subscribe(handlers);
    subscription = stream;
    renew = () => stream.renew();
  }
  const appDeps: EdgeAppDeps = {
    cache,
    origin,
    maxValueBytes: config.MAX_VALUE_BYTES,
    metrics,
    now,
    // A polling edge checks the log when asked, so `/ready` reports a poll it just made.
    subscribed: refresh ? async () => (await refresh()) || subscribed() : subscribed,
    purgeError: () => lastError,
    // This edge's own relayed purges and batch writes: the next read polls first (a stream brings them at once).
    onRelayedChange: expire,
    onUnexpectedError: logger ? (error) => logger.error({ err: error }, 'unexpected error') : undefined,
    log: parts.requestLog,
    // jose verifies with WebCrypto, so every runtime checks tokens itself.
    auth: createVerifier(authOptionsFromConfig(config)),
    // Per process or isolate: a bound per instance, not a global one (docs/security.md).
    rateLimiter: rateLimiterFromConfig(config),
    leaseMs: config.EDGE_LEASE_MS,
    ...(parts.readBody ? { readBody: parts.readBody } : {}),
    // Decided once, here, for the app and its fast path alike.
    tracing: isTracingEnabled(),
  };
  const app = createEdgeApp(appDeps);
  return {
    app,
    // The same parts as the app: one verifier (and its remembered tokens), one limiter, one tier.
    fastHit: createFastHit(appDeps),
    cache,
    origin,
    metrics,
    subscription,
    lease,
    get originLoads() {
      return originLoads;
    },
    close() {
      subscription?.close();
    },
  };
}
