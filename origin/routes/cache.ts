import { type Context, Hono } from 'hono';
import { requestBody } from '../../platform/node/request-body.ts';
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
import {
  formatGrace,
  freshness,
  type GraceWindows,
  graceMs,
  isLeaseToken,
  parseWriteCacheControl,
  readPreferences,
  requestsNoCache,
  type StaleReason,
  staleReasonOf,
  writeLifetime,
} from '../../shared/lifecycle.ts';
import type { RequestMetrics } from '../../shared/metrics.ts';
import {
  type BatchGetResponse,
  type BatchSetRequest,
  batchGetRequestSchema,
  batchSetRequestSchema,
  purgeRequestSchema,
} from '../../shared/schemas.ts';
import type { CacheService, WriteRequest } from '../cache-service.ts';
import { handedReadStartedAt, takeHandedRead } from '../fast-read.ts';
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

/**
 * Parses the `X-Cache-Lease` of a write: absent, or a lease token.
 * @throws CacheError CACHE_004 for a malformed token.
 */
export function leaseHeader(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!isLeaseToken(value)) throw new CacheError('CACHE_004', 'X-Cache-Lease is not a lease token');
  return value;
}

function booleanOption(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new CacheError('CACHE_004', `${name} must be true or false`, { details: { [name]: value } });
}

/**
 * TTL and grace of a batch set: the body's `ttl`, `stale_while_revalidate`
 * and `stale_if_error` (seconds), or the request's `Cache-Control`; a body
 * field wins over the header's directive.
 * @throws CacheError CACHE_004 when `ttl` and `max-age` differ.
 */
export function batchLifetime(
  cacheControl: string | undefined,
  body: Pick<BatchSetRequest, 'ttl' | 'stale_while_revalidate' | 'stale_if_error'>,
): { ttlSeconds: number | undefined; grace: GraceWindows } {
  const control = parseWriteCacheControl(cacheControl);
  return writeLifetime(body.ttl, {
    ...control,
    staleWhileRevalidateSeconds: body.stale_while_revalidate ?? control.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: body.stale_if_error ?? control.staleIfErrorSeconds,
  });
}

/**
 * A batch get's answer from what `CacheService.getMany` found: each of `keys`
 * once, its value encoded as asked or listed in `missing_keys`, and
 * `stale_reasons` naming each value served stale (within
 * stale-while-revalidate, as a single read's `X-Cache-Stale-Reason`), absent
 * when every value is fresh. REST batch get and the hub's `get_many` answer with it.
 * @param nowMs now, Unix ms.
 */
export function batchGetAnswer(
  found: ReadonlyMap<string, StoredEntry>,
  keys: readonly string[],
  encoding: BatchGetResponse['encoding'],
  nowMs: number,
): BatchGetResponse {
  const values: Record<string, string> = {};
  const missing: string[] = [];
  const staleReasons: Record<string, StaleReason> = {};
  for (const key of new Set(keys)) {
    const entry = found.get(key);
    if (!entry) {
      missing.push(key);
      continue;
    }
    values[key] = encodeValue(entry.value, encoding, key);
    if (freshness(entry, nowMs) === 'stale') staleReasons[key] = staleReasonOf(entry);
  }
  const stale = Object.keys(staleReasons).length > 0;
  return { values, missing_keys: missing, encoding, ...(stale ? { stale_reasons: staleReasons } : {}) };
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
  // A read the fast path handed over is timed from its store read, as the fast path times its own answers.
  const timed = instrument(metrics, deps.log, { startedAt: (c) => handedReadStartedAt(c.env) });

  app.get('/api/v1/cache/:namespace/:key', (c) =>
    timed(c, 'get', async () => {
      const { namespace, key } = cachePath(c, 'get');
      const preferences = readPreferences(c.req.header(headers.prefer));
      const strong = requestsNoCache(c.req.header(headers.cacheControl));
      // A read the fast path made already (`fast-read.ts`) and handed over because it was not a plain fresh hit.
      const read =
        takeHandedRead(c.env) ??
        (await service.get(namespace, key, { ...preferences, strong, signal: c.req.raw.signal }));
      if (!read.entry) {
        c.header(headers.cache, 'MISS');
        if (read.lease) c.header(headers.lease, read.lease);
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
        staleReason: read.staleReason,
        lease: read.lease,
        strong: read.strong,
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
        const { ttlSeconds, tags, grace } = writeOptions(c, 'set');
        const value = await requestBody(c);
        const contentType = c.req.header('Content-Type') || defaultContentType;
        const encrypt = encryptRequested(c.req.query('encrypt') ?? c.req.header(headers.encrypt));
        const compress = compressRequested(c.req.header(headers.compress));
        const leaseId = leaseHeader(c.req.header(headers.lease));
        const entry = await service.set(namespace, key, {
          value,
          contentType,
          ttlSeconds,
          tags,
          encrypt,
          compress,
          grace,
          leaseId,
        });
        c.header(headers.etag, etagFor(entry.version));
        // The edge keeps its copy with the lifecycle the origin gave it (profile defaults included).
        if (graceMs(entry) > 0) c.header(headers.grace, formatGrace(entry));
        if (service.isStrong(namespace, key)) c.header(headers.consistency, 'strong');
        const local = acceptedLocally(service, entry);
        if (local) c.header(headers.degraded, '1');
        return {
          res: c.json({
            namespace,
            key,
            version: entry.version,
            expires_at_ms: entry.expiresAtMs,
            created_at_ms: entry.createdAtMs,
          }),
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
      const answer = batchGetAnswer(found, body.keys, body.encoding, now());
      return {
        res: c.json(answer),
        tier,
        result: answer.missing_keys.length === 0 ? 'hit' : 'miss',
      };
    }),
  );

  app.post('/api/v1/cache/:namespace/batch/set', jsonSizeLimit(deps.maxValueBytes), (c) =>
    timed(c, 'batch_set', async () => {
      const namespace = namespacePath(c, 'batch_set');
      const body = await jsonBody(c, batchSetRequestSchema, 'batch_set');
      const { ttlSeconds, grace } = batchLifetime(c.req.header(headers.cacheControl), body);
      const entries = new Map<string, WriteRequest>();
      // An empty content_type is no content type, as an empty Content-Type header is on a PUT.
      const contentType =
        body.content_type || (body.encoding === 'utf8' ? 'text/plain; charset=utf-8' : defaultContentType);
      for (const [key, text] of Object.entries(body.entries)) {
        entries.set(key, {
          value: decodeValue(text, body.encoding),
          contentType,
          ttlSeconds,
          grace,
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
