import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken, isAuthorized, type Verifier } from '../shared/auth.ts';
import { headers, ifNoneMatchHits } from '../shared/headers.ts';
import { type RequestLog, readHeaders, requestIdFor } from '../shared/http.ts';
import { plainCacheTarget } from '../shared/input-guard.ts';
import { requestsNoCache } from '../shared/lifecycle.ts';
import type { RequestMetrics } from '../shared/metrics.ts';
import type { CacheService } from './cache-service.ts';

/** What `CacheService.get` answers. */
type Read = Awaited<ReturnType<CacheService['get']>>;

/**
 * A read the fast path made and left to the full path: its answer, or what it
 * threw, and when the read began (`performance.now()`, ms), which the full path's duration counts from.
 */
type Handed = ({ readonly read: Read } | { readonly error: unknown }) & { readonly startedMs: number };

/** Options of {@link fastReadListener}. */
export interface FastReadOptions {
  readonly service: CacheService;
  readonly metrics: RequestMetrics;
  /** One record per answered request, as the Hono routes log it; absent = no request log. */
  readonly log?: RequestLog | undefined;
  /** JWT verifier (docs/security.md); absent or null = authentication off. */
  readonly auth?: Verifier | null | undefined;
  /** Now, Unix ms (for `Age`). */
  readonly now?: () => number;
  /** Told of each request the fast path answered itself (tests). */
  readonly onAnswered?: (() => void) | undefined;
  /** The full path, the Hono app's listener: every request the fast path does not answer, unchanged. */
  readonly fallback: (req: IncomingMessage, res: ServerResponse) => unknown;
}

/** The Host values `@hono/node-server` takes without parsing a URL; any other goes the full way. */
const plainHost = /^[a-z0-9._-]+(?::(?:[1-5]\d{3,4}|[6-9]\d{3}))?$/;
/** Headers read here whose repeated values Node joins into one string. */
const repeatable = ['x-request-id', 'if-none-match', 'cache-control'] as const;

const handed = new WeakMap<object, Handed>();

/**
 * The read the fast path made for this request before handing it to the
 * Hono app, or undefined (the route reads itself). Taken once: each read is
 * answered, and counted in the namespace's stats, exactly once.
 * @param env the Hono context's `env` (`@hono/node-server` puts the Node request at `env.incoming`).
 * @throws whatever that read threw (a CacheError: CACHE_005 when the store failed).
 */
export function takeHandedRead(env: unknown): Read | undefined {
  const incoming = (env as { incoming?: object } | undefined)?.incoming;
  if (!incoming) return undefined;
  const taken = handed.get(incoming);
  if (!taken) return undefined;
  handed.delete(incoming);
  if ('error' in taken) throw taken.error;
  return taken.read;
}

/**
 * When the read the fast path handed over for this request began
 * (`performance.now()`, ms), or undefined; does not take it. The full path
 * times the request from there (`instrument`'s `startedAt`, `shared/http.ts`), so
 * its duration includes the store read.
 * @param env the Hono context's `env`, as for {@link takeHandedRead}.
 */
export function handedReadStartedAt(env: unknown): number | undefined {
  const incoming = (env as { incoming?: object } | undefined)?.incoming;
  return incoming ? handed.get(incoming)?.startedMs : undefined;
}

/** `[namespace, key]` of a plain HTTP/1.1 `GET /api/v1/cache/{namespace}/{key}`, or null for any other request. */
function plainRead(req: IncomingMessage): [string, string] | null {
  if (req.method !== 'GET' || req.httpVersionMajor !== 1) return null;
  // No query (the route takes none, so the guard answers it), no escapes (the router decodes them), no dot segments.
  const target = plainCacheTarget(req.url ?? '');
  if (!target) return null;
  const h = req.headers;
  // `Prefer` (leases, waits) changes the read: the route handles it.
  if (h.prefer !== undefined) return null;
  if (h.host === undefined || !plainHost.test(h.host)) return null;
  // Node joins repeated values of these into one string; anything else is left to the full path.
  for (const name of repeatable) if (typeof (h[name] ?? '') !== 'string') return null;
  return target;
}

/**
 * A `node:http` listener in front of the origin's Hono app that answers the
 * hot request itself: a plain `GET /api/v1/cache/{namespace}/{key}` over
 * HTTP/1.1 whose read is a fresh hit confirmed by the store. It applies what
 * the full path applies, in the same order and with the same answer (status,
 * headers and body; the headers come from the same `readHeaders` as the
 * route's `readResponse`, `shared/http.ts`): the path and query guards (any query, percent-escape or dot
 * segment goes the full way), the bearer token and the `cache:read` grant in
 * the namespace, the request id (echoed when well-formed), the request's
 * count and duration in `metrics` (seconds) and its request-log record.
 *
 * Everything else goes to `fallback` untouched: other methods, paths and
 * HTTP/2, `Prefer` requests (leases, waits), a missing or refused token
 * (the full path answers 401/403 and records the refusal), and reads that are
 * not a plain fresh hit — misses, STALE, degraded answers, leases, store
 * failures — whose result is handed over ({@link takeHandedRead}) so the
 * store is read once. Not installed while tracing is on (the full path
 * opens the request's span).
 */
export function fastReadListener(options: FastReadOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { service, metrics, log, auth, fallback, onAnswered } = options;
  const now = options.now ?? Date.now;

  async function serve(req: IncomingMessage, res: ServerResponse, namespace: string, key: string): Promise<void> {
    if (auth) {
      const token = bearerToken(req.headers.authorization);
      if (!token) return void fallback(req, res);
      // A token verified before is read from the verifier's cache without a promise; only the rest wait.
      const principal = auth.peek?.(token) ?? (await auth(token).catch(() => undefined));
      if (!principal || !isAuthorized(principal, 'cache:read', namespace)) return void fallback(req, res);
    }
    const started = performance.now();
    let read: Read;
    try {
      // `Cache-Control: no-cache` is a strong read (fetch adds it to every conditional request).
      read = await service.get(namespace, key, {
        strong: requestsNoCache(req.headers['cache-control'] as string | undefined),
      });
    } catch (error) {
      handed.set(req, { error, startedMs: started });
      return void fallback(req, res);
    }
    const { entry } = read;
    if (!entry || read.status !== 'HIT' || read.degraded || read.lease !== undefined || read.staleReason) {
      handed.set(req, { read, startedMs: started });
      return void fallback(req, res);
    }
    const requestId = requestIdFor(req.headers['x-request-id'] as string | undefined);
    const { tier } = read;
    let status: number;
    try {
      const h = readHeaders(
        entry,
        { status: 'HIT', tier, degraded: false, nowMs: now(), exposeExpiry: true, strong: read.strong },
        requestId,
      );
      // As `readResponse` answers (`shared/http.ts`): 304 without a body, else the value and its Content-Type.
      if (ifNoneMatchHits(req.headers['if-none-match'] as string | undefined, h[headers.etag]!)) {
        status = 304;
        // Validates every header before writing any: a throw leaves nothing sent.
        res.writeHead(status, h);
        res.end();
      } else {
        status = 200;
        h['Content-Type'] = entry.contentType;
        h['Content-Length'] = String(entry.value.byteLength);
        res.writeHead(status, h);
        res.end(entry.value);
      }
    } catch (error) {
      // The full path meets the same error building its Response and answers it (CACHE_005).
      if (res.headersSent) throw error;
      handed.set(req, { error, startedMs: started });
      return void fallback(req, res);
    }
    const seconds = (performance.now() - started) / 1000;
    metrics.request('get', tier, 'hit', seconds);
    log?.({
      request_id: requestId,
      trace_id: undefined,
      operation: 'get',
      namespace,
      tier,
      result: 'hit',
      status,
      duration_ms: seconds * 1000,
    });
    onAnswered?.();
  }

  return (req, res) => {
    const target = plainRead(req);
    if (!target) {
      fallback(req, res);
      return;
    }
    serve(req, res, target[0], target[1]).catch((error: unknown) => res.destroy(error as Error));
  };
}
