import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { CacheError } from '../../shared/errors.ts';
import { type AppEnv, jsonBody } from '../../shared/http.ts';
import { breakerStates, edgeReportSchema } from '../../shared/stats.ts';
import { edgeStatsPath, statsPath } from './paths.ts';
import type { StatsCollector } from './stats-collector.ts';

// uPlot ships a prebuilt browser bundle and stylesheet: served as they are, no build step.
const uplotDist = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
const assets: Record<string, { file: string; type: string }> = {
  'uPlot.iife.min.js': { file: join(uplotDist, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { file: join(uplotDist, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
  'dashboard.js': { file: new URL('./page.js', import.meta.url).pathname, type: 'text/javascript; charset=utf-8' },
};
const page = readFileSync(new URL('./page.html', import.meta.url), 'utf8');

/**
 * The routes of the origin's live dashboard (docs/operating.md):
 * - `GET /dashboard`: a static page (uPlot charts) polling {@link statsPath};
 * - `GET /dashboard/assets/<file>`: uPlot's bundle and CSS from node_modules, and the page's script;
 * - `GET /api/v1/stats`: `{ sample_seconds, breaker_states, eviction_policy, edges, points }`, points
 *   oldest first (`StatsPoint` of `shared/stats.ts`); `eviction_policy` is the in-memory tiers' `EVICTION_POLICY`;
 *   `warm_jobs` the recent warm jobs (`shared/warm.ts` `warmJobSchema` without `failed_items`) when `warmJobs` is given;
 * - `POST /api/v1/edges/stats`: an edge's `{ edge_id, snapshot }`; 204, or 400 CACHE_004 when malformed.
 */
export function dashboardRoutes(
  collector: StatsCollector,
  sampleSeconds: number,
  evictionPolicy = 'unknown',
  warmJobs?: () => Promise<unknown[]>,
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const files = new Map<string, { body: string; type: string }>();
  for (const [name, a] of Object.entries(assets)) files.set(name, { body: readFileSync(a.file, 'utf8'), type: a.type });

  app.get('/dashboard', (c) => c.html(page));
  app.get('/dashboard/assets/:file', (c) => {
    const file = files.get(c.req.param('file'));
    if (!file) throw new CacheError('CACHE_001', 'No such dashboard asset');
    return c.body(file.body, 200, { 'Content-Type': file.type, 'Cache-Control': 'public, max-age=3600' });
  });
  app.get(statsPath, async (c) =>
    c.json({
      sample_seconds: sampleSeconds,
      breaker_states: breakerStates,
      eviction_policy: evictionPolicy,
      edges: collector.edges.map((e) => ({ edge_id: e.edgeId, last_report_ms: e.lastReportMs })),
      points: collector.points,
      ...(warmJobs ? { warm_jobs: await warmJobs() } : {}),
    }),
  );
  app.post(
    edgeStatsPath,
    bodyLimit({
      maxSize: 256 * 1024,
      onError: () => {
        throw new CacheError('CACHE_003', 'Edge report too large', { status: 413 });
      },
    }),
    async (c) => {
      collector.report(await jsonBody(c, edgeReportSchema, 'edge_stats'));
      return c.body(null, 204);
    },
  );
  return app;
}
