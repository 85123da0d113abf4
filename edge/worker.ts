/**
 * Cloudflare Workers entry point (`wrangler.toml`). Wires the same Hono app
 * as `edge/node.ts` from the Worker's bindings (vars named as the env vars of
 * ARCHITECTURE.md §3).
 *
 * The tier lives in the isolate's memory, so it is per-isolate and short-lived.
 * A Worker cannot hold the purge stream open between requests, so on Workers
 * staleness is bounded by `EDGE_MAX_TTL_SECONDS` alone (the consistency
 * bound's fallback clause); a Durable Object subscriber is future work.
 */
import type { Hono } from 'hono';
import { authOptionsFromConfig, createVerifier } from '../shared/auth.ts';
import { edgeConfigSchema, parseConfig } from '../shared/config.ts';
import type { AppEnv } from '../shared/http.ts';
import { createEdgeApp } from './app.ts';
import { EdgeCache } from './edge-cache.ts';
import { memoryTier } from './memory-tier.ts';
import { OriginClient } from './origin-client.ts';
import { rateLimiterFromConfig } from './rate-limit.ts';

let app: Hono<AppEnv> | undefined;

function build(env: Record<string, unknown>): Hono<AppEnv> {
  const vars = Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === 'string')) as Record<
    string,
    string
  >;
  const config = parseConfig(edgeConfigSchema, vars);
  const origin = new OriginClient({
    baseUrl: config.ORIGIN_URL,
    timeoutMs: config.EDGE_ORIGIN_TIMEOUT_MS,
    token: config.EDGE_ORIGIN_TOKEN,
  });
  const cache = new EdgeCache({
    tier: memoryTier({ maxBytes: config.EDGE_MAX_BYTES, policy: config.EVICTION_POLICY }),
    load: (ns, key, requestId) => origin.get(ns, key, requestId),
    maxTtlMs: config.EDGE_MAX_TTL_SECONDS * 1000,
  });
  // jose verifies with WebCrypto, so the Worker checks tokens itself like the Node edge.
  const auth = createVerifier(authOptionsFromConfig(config));
  // Per isolate on Workers: a bound per instance, not a global one (docs/security.md).
  const rateLimiter = rateLimiterFromConfig(config);
  return createEdgeApp({ cache, origin, maxValueBytes: config.MAX_VALUE_BYTES, auth, rateLimiter });
}

export default {
  fetch(request: Request, env: Record<string, unknown>, ctx: unknown): Response | Promise<Response> {
    app ??= build(env);
    return app.fetch(request, env, ctx as never);
  },
};
