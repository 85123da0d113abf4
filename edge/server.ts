import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { serve } from '@hono/node-server';
import pino, { type Logger } from 'pino';
import { authOptionsFromConfig, createVerifier } from '../shared/auth.ts';
import type { EdgeConfig } from '../shared/config.ts';
import { pinoRequestLog } from '../shared/request-log.ts';
import { answerClientErrorsWithEnvelope, requestTimeouts } from '../shared/request-timeouts.ts';
import { createEdgeApp } from './app.ts';
import { EdgeCache } from './edge-cache.ts';
import { memoryTier } from './memory-tier.ts';
import { edgeNodeMetrics } from './node-metrics.ts';
import { OriginClient } from './origin-client.ts';
import { type PurgeSubscription, subscribePurges } from './purge-subscriber.ts';
import { rateLimiterFromConfig } from './rate-limit.ts';
import { type StatsReporter, startStatsReporter } from './stats-reporter.ts';

/** A running Node edge. */
export interface RunningEdge {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  readonly cache: EdgeCache;
  readonly subscription: PurgeSubscription;
  /** Origin loads so far (after coalescing). */
  readonly originLoads: number;
  /** Stops the purge subscription and the server. */
  close(): Promise<void>;
}

/**
 * Wires a Node edge from its config: memory tier, origin client, purge
 * subscription, Prometheus metrics; listens on `EDGE_HOST:EDGE_PORT`
 * (0 = a free port). Used by `edge/node.ts`, `npm start`, tests and benchmarks.
 */
export async function startEdge(config: EdgeConfig, options: { logger?: Logger } = {}): Promise<RunningEdge> {
  const logger = options.logger ?? pino({ level: config.LOG_LEVEL, name: 'strata-edge' });
  const tier = memoryTier({ maxBytes: config.EDGE_MAX_BYTES, policy: config.EVICTION_POLICY });
  const auth = createVerifier(authOptionsFromConfig(config));
  const token = config.EDGE_ORIGIN_TOKEN;
  const origin = new OriginClient({ baseUrl: config.ORIGIN_URL, timeoutMs: config.EDGE_ORIGIN_TIMEOUT_MS, token });
  let subscription: PurgeSubscription | undefined;
  const metrics = edgeNodeMetrics(tier, () => subscription?.connected ?? false);
  let originLoads = 0;
  const cache = new EdgeCache({
    tier,
    load: (ns, key, requestId) => origin.get(ns, key, requestId),
    maxTtlMs: config.EDGE_MAX_TTL_SECONDS * 1000,
    onOriginLoad: () => {
      originLoads++;
      metrics.originLoad();
    },
  });
  subscription = subscribePurges({
    originUrl: config.ORIGIN_URL,
    idleTimeoutMs: config.EDGE_PURGE_IDLE_TIMEOUT_MS,
    headers: token ? { Authorization: `Bearer ${token}` } : undefined,
    onMessage: (message) => {
      const removed = cache.apply(message);
      metrics.purgeApplied(message.type, removed, message.type === 'purge' ? message.ts : undefined);
      if (message.type === 'reset') logger.warn({ reason: message.reason }, 'purge stream reset: tier dropped');
    },
    onStateChange: (connected) => {
      if (connected) logger.info({ origin: config.ORIGIN_URL }, 'purge stream connected');
      else metrics.reconnect();
    },
    onError: (error) => logger.debug({ err: error }, 'purge stream interrupted'),
  });
  const app = createEdgeApp({
    cache,
    origin,
    maxValueBytes: config.MAX_VALUE_BYTES,
    metrics,
    subscribed: () => subscription?.connected ?? false,
    onUnexpectedError: (error) => logger.error({ err: error }, 'unexpected error'),
    log: pinoRequestLog(logger),
    auth,
    rateLimiter: rateLimiterFromConfig(config),
  });
  const server = await new Promise<Server>((resolve) => {
    const s = serve(
      {
        fetch: app.fetch,
        port: config.EDGE_PORT,
        hostname: config.EDGE_HOST,
        serverOptions: requestTimeouts(config.REQUEST_TIMEOUT_MS),
      },
      () => resolve(s as Server),
    );
  });
  server.keepAliveTimeout = 65_000;
  answerClientErrorsWithEnvelope(server);
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.EDGE_HOST}:${port}`;
  logger.info({ url, origin: config.ORIGIN_URL }, 'edge listening');
  let reporter: StatsReporter | undefined;
  if (config.EDGE_STATS_INTERVAL_SECONDS > 0) {
    reporter = startStatsReporter({
      registry: metrics.registry,
      originUrl: config.ORIGIN_URL,
      edgeId: config.EDGE_ID ?? `${hostname()}:${port}`,
      intervalMs: config.EDGE_STATS_INTERVAL_SECONDS * 1000,
      timeoutMs: config.EDGE_ORIGIN_TIMEOUT_MS,
      onError: (error) => logger.debug({ err: error }, 'stats report not taken'),
      token,
    });
  }
  return {
    url,
    port,
    cache,
    subscription,
    get originLoads() {
      return originLoads;
    },
    async close() {
      reporter?.stop();
      subscription?.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
