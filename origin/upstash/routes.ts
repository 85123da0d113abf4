import { Hono } from 'hono';
import type { Verifier } from '../../shared/auth.ts';
import { headers } from '../../shared/headers.ts';
import type { AppEnv, RequestLog } from '../../shared/http.ts';
import type { RequestMetrics } from '../../shared/metrics.ts';
import { mountUpstash } from '../../shared/upstash-http.ts';
import { type UpstashExecutorOptions, upstashExecutor } from './executor.ts';

export interface OriginUpstashDeps extends UpstashExecutorOptions {
  /** Largest value, bytes (bounds the request body). */
  readonly maxValueBytes: number;
  readonly auth?: Verifier | null | undefined;
  readonly metrics?: RequestMetrics | undefined;
  readonly log?: RequestLog | undefined;
}

/**
 * The origin's Upstash protocol at `/upstash/{namespace}` (docs in the
 * README, "Upstash clients"): every command runs against the store through
 * {@link upstashExecutor}. The answer carries the highest version written as
 * `upstash-sync-token` and `X-Cache-Version`, so an edge relaying a write can
 * drop its older copies at once.
 */
export function originUpstashRoutes(deps: OriginUpstashDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const executor = upstashExecutor(deps);
  mountUpstash(app, {
    auth: deps.auth,
    metrics: deps.metrics,
    log: deps.log,
    maxBodyBytes: Math.max(deps.maxValueBytes * 2, 8 * 1024 * 1024),
    async run({ namespace, request, principal, c }) {
      const done = await executor.execute(namespace, request, principal?.serviceId ?? 'anonymous');
      if (done.version > 0) c.header(headers.version, String(done.version));
      return { outcomes: done.outcomes, syncToken: done.version, tier: deps.service.store.kind };
    },
  });
  return app;
}
