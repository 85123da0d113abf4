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
 */
import type { Hono } from 'hono';
import { edgeConfigSchema, parseConfig } from '../../../shared/config.ts';
import type { AppEnv } from '../../../shared/http.ts';
import { buildEdge } from '../../build-edge.ts';

let app: Hono<AppEnv> | undefined;

function build(env: Record<string, unknown>): Hono<AppEnv> {
  const vars = Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === 'string')) as Record<
    string,
    string
  >;
  return buildEdge(parseConfig(edgeConfigSchema, vars), { purgeSource: 'poll' }).app;
}

export default {
  fetch(request: Request, env: Record<string, unknown>, ctx: unknown): Response | Promise<Response> {
    app ??= build(env);
    return app.fetch(request, env, ctx as never);
  },
};
