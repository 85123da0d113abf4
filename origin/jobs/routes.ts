import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { Hono } from 'hono';
import { authorizeBody } from '../../shared/auth-http.ts';
import { CacheError, invalidInput } from '../../shared/errors.ts';
import { type AppEnv, instrument, type RequestLog } from '../../shared/http.ts';
import type { RequestMetrics } from '../../shared/metrics.ts';
import { jobIdSchema, maxWarmUploadBytes, type WarmQuery, warmQuerySchema } from '../../shared/warm.ts';
import { checkTemplate } from './url-source.ts';
import type { WarmJobs } from './warm-jobs.ts';
import type { WarmSpec } from './warm-runner.ts';

/** Hottest keys of a trace loaded when `top` is not given. */
export const defaultTop = 1_000;
/** Fetches at once when `concurrency` is not given. */
export const defaultConcurrency = 8;
/** Retries of a fetch when `retries` is not given. */
export const defaultRetries = 3;

/** The job spec of a query (or a `WARM_ON_START` source, whose fields are the same). */
export function specOf(
  q: Pick<WarmQuery, 'namespace' | 'format' | 'url_template' | 'top' | 'concurrency' | 'retries' | 'ttl'>,
): WarmSpec {
  return {
    namespace: q.namespace,
    format: q.format,
    urlTemplate: q.url_template,
    top: q.top ?? defaultTop,
    concurrency: q.concurrency ?? defaultConcurrency,
    retries: q.retries ?? defaultRetries,
    ttlSeconds: q.ttl,
  };
}

/**
 * Warm job routes (docs/warming.md), each needing `cache:write` on the
 * job's namespace:
 *
 * - `POST /api/v1/jobs/warm?namespace=&format=jsonl|csv|keys|trace[&url_template=&top=&concurrency=&retries=&ttl=]`:
 *   the body is the data (any length up to {@link maxWarmUploadBytes}; streamed to a temporary file, never held
 *   whole); 202 `{ id, state, href }` and `Location`.
 * - `GET /api/v1/jobs/{id}`: progress (`shared/warm.ts` `warmJobSchema`).
 * - `DELETE /api/v1/jobs/{id}`: cancels; answers the job as it stands.
 *
 * Errors: 400 CACHE_004 for a bad query, job id, or a URL template whose
 * origin is not on `WARM_ALLOWED_ORIGINS` (refused before any fetch);
 * 404 CACHE_001 for an unknown job; 413 CACHE_003 for a body over the limit.
 */
export function warmJobRoutes(deps: {
  readonly jobs: WarmJobs;
  readonly allowedOrigins: ReadonlySet<string>;
  readonly tier: string;
  readonly metrics: RequestMetrics;
  readonly log?: RequestLog;
}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const timed = instrument(deps.metrics, deps.log);

  app.post('/api/v1/jobs/warm', (c) =>
    timed(c, 'warm', async () => {
      const query = warmQuerySchema.safeParse(c.req.query());
      if (!query.success) throw invalidInput(query.error, { operation: 'warm' });
      authorizeBody(c, 'cache:write', query.data.namespace);
      const spec = specOf(query.data);
      if (spec.urlTemplate !== undefined) checkTemplate(spec.urlTemplate, deps.allowedOrigins);
      const dir = await mkdtemp(join(tmpdir(), 'strata-warm-'));
      const path = join(dir, 'input');
      const cleanup = () => rm(dir, { recursive: true, force: true });
      try {
        await spool(c.req.raw.body, path);
      } catch (error) {
        await cleanup();
        throw error;
      }
      const { id } = await deps.jobs.start(spec, { path }, cleanup).catch(async (error: unknown) => {
        await cleanup();
        throw error;
      });
      const href = `/api/v1/jobs/${id}`;
      return { res: c.json({ id, state: 'running', href }, 202, { Location: href }), tier: deps.tier, result: 'ok' };
    }),
  );

  const jobOf = async (id: string, c: Parameters<typeof authorizeBody>[0]) => {
    const parsed = jobIdSchema.safeParse(id);
    if (!parsed.success) throw invalidInput(parsed.error, { operation: 'warm' });
    const job = await deps.jobs.get(parsed.data);
    if (!job) throw new CacheError('CACHE_001', 'Job not found', { details: { id } });
    authorizeBody(c, 'cache:write', job.namespace);
    return job;
  };
  app.get('/api/v1/jobs/:id', (c) =>
    timed(c, 'warm', async () => {
      const job = await jobOf(c.req.param('id'), c);
      return { res: c.json(job), tier: deps.tier, result: 'ok' };
    }),
  );
  app.delete('/api/v1/jobs/:id', (c) =>
    timed(c, 'warm', async () => {
      const job = await jobOf(c.req.param('id'), c);
      const after = (await deps.jobs.cancel(job.id)) ?? job;
      return { res: c.json(after), tier: deps.tier, result: 'ok' };
    }),
  );
  return app;
}

/** Streams a request body to `path`, refusing more than {@link maxWarmUploadBytes}. */
async function spool(body: ReadableStream<Uint8Array> | null, path: string): Promise<void> {
  const out = createWriteStream(path);
  if (!body) {
    await new Promise<void>((resolve, reject) =>
      out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
    return;
  }
  let bytes = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > maxWarmUploadBytes) {
        callback(
          new CacheError('CACHE_003', 'Warm input too large', {
            status: 413,
            details: { max_bytes: maxWarmUploadBytes },
          }),
        );
        return;
      }
      callback(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(body as NodeReadableStream<Uint8Array>), limit, out);
}
