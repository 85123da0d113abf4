import { type Context, Hono } from 'hono';
import { purgeScope } from '../../shared/auth.ts';
import { authorizeBody } from '../../shared/auth-http.ts';
import { decodeValue, encodeValue } from '../../shared/bytes.ts';
import { CacheError } from '../../shared/errors.ts';
import { etagFor, headers } from '../../shared/headers.ts';
import type { AppEnv } from '../../shared/http.ts';
import {
  cachePath,
  instrument,
  jsonBody,
  jsonSizeLimit,
  namespacePath,
  type RequestLog,
  readResponse,
  valueSizeLimit,
  writeOptions,
} from '../../shared/http.ts';
import type { RequestMetrics } from '../../shared/metrics.ts';
import { batchGetRequestSchema, batchSetRequestSchema, purgeRequestSchema } from '../../shared/schemas.ts';
import type { CacheService, WriteRequest } from '../cache-service.ts';
import type { RemovalResult, StoredEntry } from '../store/store.ts';

/** Default Content-Type of a value written without one. */
export const defaultContentType = 'application/octet-stream';

/**
 * True when Redis was unavailable and the origin's local tier alone accepted
 * this change (written back later; see `store/resilient.ts`).
 */
function acceptedLocally(service: CacheService, result: StoredEntry | RemovalResult): boolean {
  return service.store.acceptedLocally(result);
}

/**
 * Parses `?encrypt=` / `X-Cache-Encrypt`: `true`/`1` or `false`/`0`.
 * @throws CacheError CACHE_004 for anything else.
 */
export function encryptRequested(value: string | undefined): boolean {
  return booleanOption('encrypt', value) ?? false;
}

/**
 * Parses `X-Cache-Compress`: `true`/`1`, `false`/`0`, or absent (undefined:
 * the origin's `COMPRESS_MIN_BYTES` decides).
 * @throws CacheError CACHE_004 for anything else.
 */
export function compressRequested(value: string | undefined): boolean | undefined {
  return booleanOption('compress', value);
}

function booleanOption(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new CacheError('CACHE_004', `${name} must be true or false`, { details: { [name]: value } });
}

/**
 * The origin's cache REST routes (the same surface as the edge's).
 * Error codes: CACHE_001 miss, CACHE_003 oversized value, CACHE_004 bad
 * input, CACHE_005 store unavailable.
 */
export function cacheRoutes(deps: {
  service: CacheService;
  metrics: RequestMetrics;
  maxValueBytes: number;
  now: () => number;
  log?: RequestLog;
}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { service, metrics, now } = deps;
  const timed = instrument(metrics, deps.log);

  app.get('/api/v1/cache/:namespace/:key', (c) =>
    timed(c, 'get', async () => {
      const { namespace, key } = cachePath(c, 'get');
      const read = await service.get(namespace, key);
      if (!read.entry) {
        c.header(headers.cache, 'MISS');
        // A miss resting on a delete Redis has not confirmed yet: say so, like any degraded answer.
        if (read.degraded) c.header(headers.degraded, '1');
        throw new CacheError('CACHE_001', undefined, { details: { key, operation: 'get' } });
      }
      const { entry, tier } = read;
      // Served while Redis could not confirm it (breaker open or Redis failing): the builder says so.
      const res = readResponse(c, entry, {
        status: read.status,
        tier,
        degraded: read.degraded,
        nowMs: now(),
        exposeExpiry: true,
      });
      return { res, tier, result: read.status === 'STALE' ? 'stale' : 'hit' };
    }),
  );

  // The limit in force now (`POST /api/v1/reload` may change it).
  app.put(
    '/api/v1/cache/:namespace/:key',
    valueSizeLimit(() => service.settings.maxValueBytes),
    (c) =>
      timed(c, 'set', async () => {
        const { namespace, key } = cachePath(c, 'set');
        const { ttlSeconds, tags } = writeOptions(c, 'set');
        const value = new Uint8Array(await c.req.arrayBuffer());
        const contentType = c.req.header('Content-Type') || defaultContentType;
        const encrypt = encryptRequested(c.req.query('encrypt') ?? c.req.header(headers.encrypt));
        const compress = compressRequested(c.req.header(headers.compress));
        const entry = await service.set(namespace, key, { value, contentType, ttlSeconds, tags, encrypt, compress });
        c.header(headers.etag, etagFor(entry.version));
        const local = acceptedLocally(service, entry);
        if (local) c.header(headers.degraded, '1');
        return {
          res: c.json({ namespace, key, version: entry.version, expires_at_ms: entry.expiresAtMs }),
          tier: local ? 'origin-local' : service.store.kind,
          result: 'ok',
        };
      }),
  );

  app.delete('/api/v1/cache/:namespace/:key', (c) =>
    timed(c, 'delete', async () => {
      const { namespace, key } = cachePath(c, 'delete');
      const result = await service.delete(namespace, key);
      const local = acceptedLocally(service, result);
      if (local) c.header(headers.degraded, '1');
      return {
        res: c.json({ namespace, key, deleted: result.removed > 0, version: result.version }),
        tier: local ? 'origin-local' : service.store.kind,
        result: 'ok',
      };
    }),
  );

  app.post('/api/v1/cache/:namespace/batch/get', jsonSizeLimit(deps.maxValueBytes), (c) =>
    timed(c, 'batch_get', async () => {
      const namespace = namespacePath(c, 'batch_get');
      const body = await jsonBody(c, batchGetRequestSchema, 'batch_get');
      const { found, tier, degraded } = await service.getMany(namespace, body.keys);
      if (degraded) c.header(headers.degraded, '1');
      const values: Record<string, string> = {};
      const missing: string[] = [];
      for (const key of new Set(body.keys)) {
        const entry = found.get(key);
        if (entry) values[key] = encodeValue(entry.value, body.encoding, key);
        else missing.push(key);
      }
      return {
        res: c.json({ values, missing_keys: missing, encoding: body.encoding }),
        tier,
        result: missing.length === 0 ? 'hit' : 'miss',
      };
    }),
  );

  app.post('/api/v1/cache/:namespace/batch/set', jsonSizeLimit(deps.maxValueBytes), (c) =>
    timed(c, 'batch_set', async () => {
      const namespace = namespacePath(c, 'batch_set');
      const body = await jsonBody(c, batchSetRequestSchema, 'batch_set');
      const entries = new Map<string, WriteRequest>();
      const contentType =
        body.content_type ?? (body.encoding === 'utf8' ? 'text/plain; charset=utf-8' : defaultContentType);
      for (const [key, text] of Object.entries(body.entries)) {
        entries.set(key, {
          value: decodeValue(text, body.encoding),
          contentType,
          ttlSeconds: body.ttl,
          encrypt: body.encrypt,
          compress: body.compress,
        });
      }
      const stored = await service.setMany(namespace, entries);
      if ([...stored.values()].some((entry) => acceptedLocally(service, entry))) c.header(headers.degraded, '1');
      return { res: c.json({ stored_count: stored.size }), tier: service.store.kind, result: 'ok' };
    }),
  );

  app.post('/api/v1/purge', jsonSizeLimit(deps.maxValueBytes), (c: Context<AppEnv>) =>
    timed(c, 'purge', async () => {
      const body = await jsonBody(c, purgeRequestSchema, 'purge');
      authorizeBody(c, purgeScope(body), body.namespace);
      const result = await service.purge(body.namespace, body);
      return { res: c.json({ purged_count: result.removed, seq: result.seq }), tier: service.store.kind, result: 'ok' };
    }),
  );
  return app;
}
