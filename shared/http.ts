import type { Context, Hono, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { z } from 'zod';
import { CacheError, invalidInput } from './errors.ts';
import { type CacheStatus, etagFor, headers, ifNoneMatchHits } from './headers.ts';
import { parseJsonBody } from './input-guard.ts';
import {
  isValidKey,
  isValidNamespace,
  keySchema,
  namespaceSchema,
  plainTagList,
  plainTtlSeconds,
  tagListSchema,
  ttlQuerySchema,
} from './keys.ts';
import {
  ageSeconds as ageOf,
  formatGrace,
  type GraceWindows,
  graceMs,
  parseWriteCacheControl,
  readCacheControl,
  type StaleReason,
  writeLifetime,
} from './lifecycle.ts';
import type { RequestMetrics } from './metrics.ts';
import { activeTraceId, annotateCacheSpan } from './tracing.ts';

/**
 * HTTP plumbing both the edge and the origin use, so the two surfaces answer
 * errors, request ids and input validation identically. Runtime-free (Hono).
 */

/**
 * Hono environment of both apps: the request id set by
 * {@link requestIdMiddleware}, and whether a handler already put it on its
 * response (the hot read path does, to keep the response headers a plain
 * object — Hono's and @hono/node-server's fast path).
 */
export type AppEnv = { Variables: { requestId: string; requestIdSent?: boolean } };

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id of a request: its `X-Request-Id` when well formed (1–128 of `[A-Za-z0-9._:-]`), else a new UUID. */
export function requestIdFor(given: string | null | undefined): string {
  return given && requestIdPattern.test(given) ? given : crypto.randomUUID();
}

/** Echoes a well-formed `X-Request-Id` or generates one, on every response. */
export const requestIdMiddleware: MiddlewareHandler<AppEnv> = async (c, next) => {
  const id = requestIdFor(c.req.header(headers.requestId));
  c.set('requestId', id);
  await next();
  if (!c.get('requestIdSent')) c.res.headers.set(headers.requestId, id);
};

/** Adds the request id to a plain header object and marks it sent (see {@link AppEnv}). */
export function withRequestId(c: Context<AppEnv>, h: Record<string, string>): Record<string, string> {
  h[headers.requestId] = c.get('requestId');
  c.set('requestIdSent', true);
  return h;
}

/**
 * A cached value and its metadata, as the origin's store holds it and a read
 * answers with it (the edge's tier entry extends it). Times are Unix ms.
 */
export interface ReadEntry {
  readonly value: Uint8Array;
  readonly contentType: string;
  /** Monotonic per key (`shared/version.ts`): the `ETag` and `X-Cache-Version`. */
  readonly version: number;
  /** When the origin stored it; `Age` counts whole seconds from here. */
  readonly createdAtMs: number;
  /** End of the fresh lifetime; grace windows follow it (`shared/lifecycle.ts`). */
  readonly expiresAtMs: number;
  /** Surrogate keys (tags) recorded at write time. */
  readonly tags: readonly string[];
  /** `stale-while-revalidate` window after `expiresAtMs`, ms; absent = 0 (RFC 5861 §3). */
  readonly staleWhileRevalidateMs?: number | undefined;
  /** `stale-if-error` window after `expiresAtMs`, ms; absent = 0 (RFC 5861 §4). */
  readonly staleIfErrorMs?: number | undefined;
  /** When a soft purge marked the entry stale, Unix ms; absent when never soft-purged. */
  readonly softPurgedAtMs?: number | undefined;
  /** How long its last refresh took, ms, from lease grant to the lease's write (Δ of XFetch); absent when unknown. */
  readonly refreshMs?: number | undefined;
}

/** Where a read was answered from and how, for the response headers. */
export interface ReadSource {
  /** `X-Cache`. */
  readonly status: CacheStatus;
  /** `X-Cache-Tier`. */
  readonly tier: string;
  /** Answered from the origin's fallback tier: `X-Cache-Degraded: 1`. */
  readonly degraded: boolean;
  /** Now, Unix ms, for `Age`. */
  readonly nowMs: number;
  /** Send `X-Cache-Expires-At` and `X-Cache-Grace` (the origin does, so an edge keeps the same lifecycle). */
  readonly exposeExpiry?: boolean;
  /** With `status` STALE: `X-Cache-Stale-Reason`. */
  readonly staleReason?: StaleReason | undefined;
  /** The refresh lease handed to this caller: `X-Cache-Lease`. */
  readonly lease?: string | undefined;
  /** The key's profile is `strong`: `X-Cache-Consistency: strong`. */
  readonly strong?: boolean | undefined;
}

/**
 * The one response to a read, at the edge and at the origin (same REST
 * surface): `X-Cache`, `X-Cache-Tier`, `ETag` (RFC 9110 §8.8.3), `Age`
 * (RFC 9111 §5.1, seconds), `Cache-Control` (what remains, `shared/lifecycle.ts`),
 * `X-Cache-Stale-Reason` on a STALE answer, `X-Cache-Version`, `Cache-Tag`,
 * `X-Cache-Degraded`, `X-Request-Id`; 304 with the same headers and no body
 * when `If-None-Match` matches (RFC 9110 §13.1.2), else 200 with the value and
 * its `Content-Type`. The headers stay a plain object (see {@link AppEnv}).
 */
export function readResponse(c: Context<AppEnv>, entry: ReadEntry, source: ReadSource): Response {
  const h = readHeaders(entry, source, c.get('requestId'));
  c.set('requestIdSent', true);
  if (ifNoneMatchHits(c.req.header(headers.ifNoneMatch), h[headers.etag]!)) {
    return new Response(null, { status: 304, headers: h });
  }
  // Added in place rather than by copying `h`: one object fewer per answered read.
  h['Content-Type'] = entry.contentType;
  return new Response(entry.value as Uint8Array<ArrayBuffer>, { status: 200, headers: h });
}

/**
 * The headers of {@link readResponse} but `Content-Type`, in its order, as a
 * new plain object the caller may add to: the one place both the Hono route
 * and the runtime adapters' hit fast path (`edge/fast-hit.ts`) build them,
 * so the two answer alike. `requestId` is the `X-Request-Id` to send.
 */
export function readHeaders(entry: ReadEntry, source: ReadSource, requestId: string): Record<string, string> {
  const ageSeconds = ageOf(entry, source.nowMs);
  const h: Record<string, string> = {
    [headers.cache]: source.status,
    [headers.cacheTier]: source.tier,
    [headers.etag]: etagFor(entry.version),
    [headers.age]: String(ageSeconds),
    [headers.version]: String(entry.version),
    [headers.cacheControl]: readCacheControl(entry, ageSeconds, source.nowMs),
  };
  if (source.staleReason) h[headers.staleReason] = source.staleReason;
  if (source.lease) h[headers.lease] = source.lease;
  if (source.strong) h[headers.consistency] = 'strong';
  if (source.exposeExpiry) {
    h[headers.expiresAt] = String(entry.expiresAtMs);
    h[headers.createdAt] = String(entry.createdAtMs);
    if (graceMs(entry) > 0) h[headers.grace] = formatGrace(entry);
  }
  if (entry.tags.length > 0) h[headers.cacheTag] = entry.tags.join(',');
  if (source.degraded) h[headers.degraded] = '1';
  h[headers.requestId] = requestId;
  return h;
}

/** Renders any thrown error as the documented envelope; unknown errors become CACHE_005. */
export function errorResponse(c: Context, error: unknown, onUnexpected?: (error: unknown) => void): Response {
  let cacheError: CacheError;
  if (error instanceof CacheError) cacheError = error;
  else {
    onUnexpected?.(error);
    cacheError = new CacheError('CACHE_005', 'Internal error', { cause: error });
  }
  return c.json(cacheError.toEnvelope(), cacheError.status as 400);
}

/** Installs the envelope on errors and on unknown routes. */
export function installErrorHandling(app: Hono<AppEnv>, onUnexpected?: (error: unknown) => void): void {
  app.onError((error, c) => errorResponse(c, error, onUnexpected));
  app.notFound((c) =>
    errorResponse(c, new CacheError('CACHE_001', `No route for ${c.req.method} ${new URL(c.req.url).pathname}`)),
  );
}

/** Validates the `{namespace}` and `{key}` path parameters; throws CACHE_004. */
export function cachePath(c: Context, operation: string): { namespace: string; key: string } {
  const namespace = c.req.param('namespace') ?? '';
  const key = c.req.param('key') ?? '';
  if (isValidNamespace(namespace) && isValidKey(key)) return { namespace, key };
  const ns = namespaceSchema.safeParse(namespace);
  if (!ns.success) throw invalidInput(ns.error, { namespace, operation });
  const k = keySchema.safeParse(key);
  if (!k.success) throw invalidInput(k.error, { key, operation });
  return { namespace, key };
}

/** Validates the `{namespace}` path parameter alone; throws CACHE_004. */
export function namespacePath(c: Context, operation: string): string {
  const namespace = c.req.param('namespace') ?? '';
  const ns = namespaceSchema.safeParse(namespace);
  if (!ns.success) throw invalidInput(ns.error, { namespace, operation });
  return namespace;
}

/**
 * Parses `?ttl=SECONDS`, `?tags=a,b` and the `Cache-Control` of a write
 * (`max-age` stands for `ttl`; grace windows per RFC 5861); throws CACHE_004,
 * also when `ttl` and `max-age` differ.
 */
export function writeOptions(
  c: Context,
  operation: string,
): { ttlSeconds: number | undefined; tags: string[]; grace: GraceWindows } {
  const ttl = c.req.query('ttl');
  let ttlSeconds: number | undefined;
  if (ttl !== undefined) {
    // The schemas run only on a value the plain checks refuse, for their error message.
    ttlSeconds = plainTtlSeconds(ttl);
    if (ttlSeconds === undefined) {
      const parsed = ttlQuerySchema.safeParse(ttl);
      if (!parsed.success) throw invalidInput(parsed.error, { ttl, operation });
      ttlSeconds = parsed.data;
    }
  }
  const tagsQuery = c.req.query('tags');
  let tags = plainTagList(tagsQuery ?? '');
  if (tags === undefined) {
    const parsed = tagListSchema.safeParse(tagsQuery ?? '');
    if (!parsed.success) throw invalidInput(parsed.error, { tags: tagsQuery, operation });
    tags = parsed.data;
  }
  const lifetime = writeLifetime(ttlSeconds, parseWriteCacheControl(c.req.header(headers.cacheControl)));
  return { ttlSeconds: lifetime.ttlSeconds, tags, grace: lifetime.grace };
}

/** Reads a JSON body and validates it; malformed JSON, nesting deeper than 32 or a schema miss throws CACHE_004. */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S, operation: string): Promise<z.infer<S>> {
  const type = c.req.header('Content-Type') ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new CacheError('CACHE_004', 'Content-Type must be application/json', { details: { operation } });
  }
  const raw = parseJsonBody(await c.req.text(), operation);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw invalidInput(parsed.error, { operation });
  return parsed.data;
}

/** Rejects bodies over `maxBytes` with 413 CACHE_003 before they are buffered whole. */
export function valueSizeLimit(maxBytes: number | (() => number)): MiddlewareHandler {
  const tooLarge = (limit: number) => () => {
    throw new CacheError('CACHE_003', `Value exceeds ${limit} bytes`, { status: 413, details: { maxBytes: limit } });
  };
  // A getter: the limit can change at run time (a configuration reload) and is read per request.
  if (typeof maxBytes === 'function') {
    let limit = maxBytes();
    let check = sizeLimit(limit, tooLarge(limit));
    return (c, next) => {
      const now = maxBytes();
      if (now !== limit) {
        limit = now;
        check = sizeLimit(limit, tooLarge(limit));
      }
      return check(c, next);
    };
  }
  return sizeLimit(maxBytes, tooLarge(maxBytes));
}

/** JSON bodies (batch, purge) may carry a batch of values: allow that many values plus slack. */
export function jsonSizeLimit(maxValueBytes: number): MiddlewareHandler {
  const maxBytes = Math.max(maxValueBytes * 2, 8 * 1024 * 1024);
  return sizeLimit(maxBytes, () => {
    throw new CacheError('CACHE_003', `Request body exceeds ${maxBytes} bytes`, {
      status: 413,
      details: { maxBytes },
    });
  });
}

/**
 * Hono's `bodyLimit` with its `Content-Length` decision taken from the
 * request's headers alone: a body whose length is declared (and not
 * chunked) is judged by that length and left unread, so the route reads it
 * straight from the socket (`@hono/node-server` builds no WHATWG `Request`
 * or stream for it). Only a body without a declared length goes through
 * `bodyLimit`, which counts it as it streams. Same answers as `bodyLimit`.
 */
function sizeLimit(maxSize: number, onError: () => never): MiddlewareHandler {
  const streamed = bodyLimit({ maxSize, onError });
  return (c, next) => {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') return next();
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      return Number.parseInt(length, 10) > maxSize ? onError() : next();
    }
    return streamed(c, next);
  };
}

/** One finished request, as logged (never a value, body or credential). */
export interface RequestRecord {
  readonly request_id: string;
  /** W3C trace id (32 hex) of the request's span; absent when tracing is off. */
  readonly trace_id?: string;
  readonly operation: string;
  readonly namespace?: string;
  /** Tier that answered, or `none`. */
  readonly tier: string;
  /** `hit`, `miss`, `stale`, `ok`, `error`, or `refused` (401/403 before the route). */
  readonly result: string;
  readonly status: number;
  readonly duration_ms: number;
  /** ICD code of an error answer. */
  readonly error_code?: string;
  /** The caller's `service_id`, on a refusal whose token was valid (403). */
  readonly service_id?: string;
}

/** Receives one record per finished request (pino on Node). */
export type RequestLog = (record: RequestRecord) => void;

/** What a route handler returns to {@link instrument}: the response and how it was answered. */
export interface Answer {
  readonly res: Response;
  readonly tier: string;
  readonly result: string;
}

/** CACHE_001 (not found) and CACHE_002 (expired): the answers of a cache miss. */
function isMissCode(code: string): boolean {
  return code === 'CACHE_001' || code === 'CACHE_002';
}

/**
 * Wraps route handlers so each request is counted and timed in `metrics`
 * (seconds) and, when `log` is given, logged once with its request id.
 * Errors are recorded with tier `none` and their ICD code, then rethrown to
 * the envelope handler; their result is `miss` for CACHE_001/CACHE_002 (a
 * 404 read is a cache miss, counted in the hit ratio) and `error` otherwise.
 * Timed from the handler's start, or from `options.startedAt` when it names an earlier one.
 */
export function instrument(
  metrics: RequestMetrics,
  log?: RequestLog,
  options: {
    /** When this request's work began, if before the handler (`performance.now()`, ms): a read a fast path made and handed over. */
    readonly startedAt?: (c: Context<AppEnv>) => number | undefined;
  } = {},
) {
  const { startedAt } = options;
  return async (c: Context<AppEnv>, operation: string, run: () => Promise<Answer>): Promise<Response> => {
    const started = startedAt?.(c) ?? performance.now();
    try {
      const { res, tier, result } = await run();
      const seconds = (performance.now() - started) / 1000;
      metrics.request(operation, tier, result, seconds);
      annotateCacheSpan(operation, tier, result);
      log?.({
        request_id: c.get('requestId'),
        trace_id: activeTraceId(),
        operation,
        namespace: c.req.param('namespace'),
        tier,
        result,
        status: res.status,
        duration_ms: seconds * 1000,
      });
      return res;
    } catch (error) {
      const seconds = (performance.now() - started) / 1000;
      // A read of an absent key is the cache answering "miss", not a failure: it belongs in the hit ratio.
      const result = error instanceof CacheError && isMissCode(error.code) ? 'miss' : 'error';
      metrics.request(operation, 'none', result, seconds);
      annotateCacheSpan(operation, 'none', result);
      log?.({
        request_id: c.get('requestId'),
        trace_id: activeTraceId(),
        operation,
        namespace: c.req.param('namespace'),
        tier: 'none',
        result,
        status: error instanceof CacheError ? error.status : 503,
        duration_ms: seconds * 1000,
        error_code: error instanceof CacheError ? error.code : 'CACHE_005',
      });
      throw error;
    }
  };
}
