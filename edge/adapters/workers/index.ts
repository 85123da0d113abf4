/**
 * Cloudflare Workers entry point (`wrangler.toml`): the edge `buildEdge`
 * wires, configured from the Worker's bindings (string vars named as the
 * edge's environment variables).
 *
 * The tier lives in the isolate's memory, so it is per-isolate and short-lived.
 * A Worker cannot hold the purge stream open between requests, so it polls
 * the purge log (`GET /api/v1/purges`): before serving a hit, the isolate
 * makes sure its view is at most `EDGE_PURGE_POLL_MS` old (one poll at a
 * time, shared by concurrent requests), and it serves from its tier only
 * while its lease (`EDGE_LEASE_MS`) holds.
 *
 * With `EDGE_CACHE_API=true`, a second tier in the colo's Cache API
 * (`caches.default`, `cache-api-tier.ts`) sits behind the memory tier,
 * shared by the colo's isolates; an isolate trusts only its entries filled
 * after its own view of the purge log began. Metrics (`/metrics`) count per
 * isolate, in the Prometheus text format.
 */
import type { Hono } from 'hono';
import { edgeConfigSchema, parseConfig } from '../../../shared/config.ts';
import type { AppEnv } from '../../../shared/http.ts';
import { buildEdge } from '../../build-edge.ts';
import { textEdgeMetrics } from '../../text-metrics.ts';
import { cacheApiTier } from './cache-api-tier.ts';

/** The Workers extension of `CacheStorage`: the colo's default cache. */
interface WorkersCacheStorage {
  readonly default: Cache;
}

let app: Hono<AppEnv> | undefined;

function build(env: Record<string, unknown>): Hono<AppEnv> {
  const vars = Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === 'string')) as Record<
    string,
    string
  >;
  const config = parseConfig(edgeConfigSchema, vars);
  const shared = config.EDGE_CACHE_API
    ? cacheApiTier({ cache: (caches as unknown as WorkersCacheStorage).default })
    : undefined;
  return buildEdge(config, { purgeSource: 'poll', shared, metrics: textEdgeMetrics }).app;
}

export default {
  fetch(request: Request, env: Record<string, unknown>, ctx: unknown): Response | Promise<Response> {
    app ??= build(env);
    return app.fetch(request, env, ctx as never);
  },
};
