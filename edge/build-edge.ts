import type { Hono } from 'hono';
import { authOptionsFromConfig, createVerifier } from '../shared/auth.ts';
import type { EdgeConfig } from '../shared/config.ts';
import type { AppEnv, RequestLog } from '../shared/http.ts';
import type { RequestMetrics } from '../shared/metrics.ts';
import type { StreamMessage } from '../shared/schemas.ts';
import { createEdgeApp } from './app.ts';
import { EdgeCache } from './core/edge-cache.ts';
import { memoryTier } from './core/memory-tier.ts';
import type { PurgeSubscription } from './core/purge-source.ts';
import type { EdgeTier } from './core/tier.ts';
import { OriginClient } from './origin-client.ts';
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
  /** Follow the origin's purge stream: only runtimes that can hold a connection open (Node, not Workers isolates). */
  readonly purgeStream: boolean;
  /** The near-user tier; default: the memory tier with a budget of `EDGE_MAX_BYTES`. */
  readonly tier?: EdgeTier;
  /** Builds the runtime's metrics over the tier and the purge-stream state; default: none. */
  readonly metrics?: (tier: EdgeTier, subscribed: () => boolean) => M;
  /** Structured log of stream events and unexpected errors; default: none. */
  readonly logger?: EdgeLogger;
  /** One record per finished request; default: none. */
  readonly requestLog?: RequestLog;
}

/** An edge wired from its config, not yet serving: the runtime adapter hands `app.fetch` to its server. */
export interface BuiltEdge<M extends EdgeMetrics = EdgeMetrics> {
  readonly app: Hono<AppEnv>;
  readonly cache: EdgeCache;
  readonly origin: OriginClient;
  /** The runtime's metrics, when it gave a factory. */
  readonly metrics: M | undefined;
  /** The purge-stream subscription, when `purgeStream` was asked for. */
  readonly subscription: PurgeSubscription | undefined;
  /** Origin loads so far (after coalescing). */
  readonly originLoads: number;
  /** Stops the purge subscription (the adapter stops its own server). */
  close(): void;
}

/**
 * Wires one edge from its config and the runtime's parts: the tier, the
 * origin client (`ORIGIN_URL`, `EDGE_ORIGIN_TIMEOUT_MS`, `EDGE_ORIGIN_TOKEN`),
 * the edge cache (`EDGE_MAX_TTL_SECONDS`), the JWT verifier, the rate limit
 * and, where the runtime can hold it, the purge-stream subscription; then
 * builds the Hono app (`edge/app.ts`). Runtime-free: the adapters in
 * `edge/adapters/<runtime>/` call it and only start what it returns.
 */
export function buildEdge<M extends EdgeMetrics = EdgeMetrics>(
  config: EdgeConfig,
  parts: EdgeRuntimeParts<M>,
): BuiltEdge<M> {
  const { logger } = parts;
  const tier = parts.tier ?? memoryTier({ maxBytes: config.EDGE_MAX_BYTES, policy: config.EVICTION_POLICY });
  const token = config.EDGE_ORIGIN_TOKEN;
  const origin = new OriginClient({ baseUrl: config.ORIGIN_URL, timeoutMs: config.EDGE_ORIGIN_TIMEOUT_MS, token });
  let subscription: PurgeSubscription | undefined;
  const subscribed = () => subscription?.connected ?? false;
  const metrics = parts.metrics?.(tier, subscribed);
  let originLoads = 0;
  const cache = new EdgeCache({
    tier,
    load: (ns, key, requestId) => origin.get(ns, key, requestId),
    maxTtlMs: config.EDGE_MAX_TTL_SECONDS * 1000,
    onOriginLoad: () => {
      originLoads++;
      metrics?.originLoad();
    },
  });
  if (parts.purgeStream) {
    const applied = (message: StreamMessage) => {
      const removed = cache.apply(message);
      metrics?.purgeApplied(message.type, removed, message.type === 'purge' ? message.ts : undefined);
    };
    subscription = ssePurgeSource({
      originUrl: config.ORIGIN_URL,
      idleTimeoutMs: config.EDGE_PURGE_IDLE_TIMEOUT_MS,
      headers: token ? { Authorization: `Bearer ${token}` } : undefined,
    }).subscribe({
      onPurge: applied,
      onReset: (message) => {
        applied(message);
        logger?.warn({ reason: message.reason }, 'purge stream reset: tier dropped');
      },
      onStateChange: (connected) => {
        if (connected) {
          metrics?.purgeApplied('hello', 0);
          logger?.info({ origin: config.ORIGIN_URL }, 'purge stream connected');
        } else metrics?.reconnect();
      },
      onError: (error) => logger?.debug({ err: error }, 'purge stream interrupted'),
    });
  }
  const app = createEdgeApp({
    cache,
    origin,
    maxValueBytes: config.MAX_VALUE_BYTES,
    metrics,
    // Without a stream there is nothing to wait for: readiness does not depend on it.
    subscribed: parts.purgeStream ? subscribed : undefined,
    onUnexpectedError: logger ? (error) => logger.error({ err: error }, 'unexpected error') : undefined,
    log: parts.requestLog,
    // jose verifies with WebCrypto, so every runtime checks tokens itself.
    auth: createVerifier(authOptionsFromConfig(config)),
    // Per process or isolate: a bound per instance, not a global one (docs/security.md).
    rateLimiter: rateLimiterFromConfig(config),
  });
  return {
    app,
    cache,
    origin,
    metrics,
    subscription,
    get originLoads() {
      return originLoads;
    },
    close() {
      subscription?.close();
    },
  };
}
