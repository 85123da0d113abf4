import { bearerToken, isAuthorized, type Principal, type Verifier } from '../shared/auth.ts';
import { headers, ifNoneMatchHits } from '../shared/headers.ts';
import { type RequestLog, readHeaders, requestIdFor } from '../shared/http.ts';
import { plainCacheTarget } from '../shared/input-guard.ts';
import { freshness } from '../shared/lifecycle.ts';
import { noMetrics, type RequestMetrics } from '../shared/metrics.ts';
import { activeTraceId } from '../shared/tracing.ts';
import type { EdgeCache } from './core/edge-cache.ts';
import type { TokenBucketLimiter } from './rate-limit.ts';

/**
 * The edge's hit fast path: the runtime adapters (`edge/adapters/node`,
 * `edge/adapters/deno`) ask it first, and it answers a fresh hit of
 * `GET /api/v1/cache/{namespace}/{key}` from the memory tier without building
 * a WHATWG `Request`, a Hono context or a `Response`; anything else it
 * declines, and the adapter hands the request to the Hono app unchanged.
 * Runtime-free.
 *
 * It applies exactly what the app applies on such a hit, and answers alike
 * (status, headers but `Date` and a generated `X-Request-Id`, body; a test
 * compares the two on the same requests): the path and query guards, the
 * bearer token (only one the verifier already verified and remembers:
 * `Verifier.peek`), the `cache:read` grant in the namespace, the rate limit,
 * the request id, the headers of `readResponse` (`shared/http.ts`, the same
 * function), `If-None-Match` (304, RFC 9110 §13.1.2), the request metric
 * (`get`, tier `edge`, result `hit`, seconds) and one request-log record.
 *
 * Declined, for the app to answer: any method but GET (HEAD included), a
 * path with `%`, `\`, `#`, a dot segment or anything outside the unreserved
 * and sub-delimiter characters (RFC 3986 §3.3), any query, a `Prefer` or
 * `Cache-Control` request header, a missing, unknown or refused token,
 * an invalid namespace or key, a copy that is absent, not fresh, `strong`,
 * below a flush floor, or under a lapsed lease, and a request the rate
 * limiter refuses. A declined request has changed nothing the app's answer
 * depends on (the limiter is asked last, once the answer is certain).
 */

/** A fast-path answer: a fresh edge hit (200 with the value) or its `If-None-Match` match (304, no body). */
export interface HitAnswer {
  readonly status: 200 | 304;
  /** The response headers but `Content-Length`, `Date` and the connection's own; a new object per answer. */
  readonly headers: Record<string, string>;
  /** The value's bytes; null on 304. */
  readonly body: Uint8Array | null;
  /**
   * The tier entry answered from, as an identity only: an adapter may key
   * per-entry state on it (the Deno adapter's prebuilt responses); `status`,
   * `headers` and `body` stay what the answer is.
   */
  readonly entry: object;
}

/**
 * Tries one request: `method` as received, `target` its path and query (the
 * origin-form request target, `/api/v1/cache/ns/key`, or an absolute URL, whose
 * path is used), and `header(request, name)` a request header by its
 * lower-case name with repeated fields joined by `", "` (RFC 9110 §5.3), as
 * the app reads it. Answers or returns undefined (declined: hand the request
 * to the app).
 */
export type FastHit = <R>(
  method: string,
  target: string,
  request: R,
  header: (request: R, name: string) => string | null | undefined,
) => HitAnswer | undefined;

/** What the fast path shares with the app (`edge/app.ts` `EdgeAppDeps`, the same objects). */
export interface FastHitDeps {
  readonly cache: EdgeCache;
  readonly metrics?: RequestMetrics | undefined;
  readonly now?: (() => number) | undefined;
  readonly log?: RequestLog | undefined;
  /** Whether the app opens a span per request: then there is no fast path (the span is the app's). */
  readonly tracing?: boolean | undefined;
  /** The app's JWT verifier; absent or null = authentication off. */
  readonly auth?: Verifier | null | undefined;
  readonly rateLimiter?: TokenBucketLimiter | undefined;
}

/**
 * Builds the fast path over the app's own parts, or returns undefined when
 * there is none to take (tracing on: every request gets the app's span; an
 * authenticating verifier that remembers nothing).
 */
export function createFastHit(deps: FastHitDeps): FastHit | undefined {
  if (deps.tracing) return undefined;
  const verifier = deps.auth ?? undefined;
  const peek = verifier?.peek;
  if (verifier && !peek) return undefined;
  const { cache, log, rateLimiter } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const now = deps.now ?? Date.now;
  const tokenOf = authorizationTokens();

  return (method, target, request, header) => {
    if (method !== 'GET') return undefined;
    const started = performance.now();
    const path = pathOf(target);
    const plain = path === undefined ? null : plainCacheTarget(path);
    if (!plain) return undefined;
    const [namespace, key] = plain;
    if (header(request, 'prefer') != null || header(request, 'cache-control') != null) return undefined;
    let principal: Principal | undefined;
    if (peek) {
      const token = tokenOf(header(request, 'authorization'));
      principal = token === undefined ? undefined : peek(token);
      if (!principal || !isAuthorized(principal, 'cache:read', namespace)) return undefined;
    }
    const entry = cache.freshHit(namespace, key);
    if (!entry) return undefined;
    const t = now();
    if (freshness(entry, t) !== 'fresh') return undefined;
    // Last: a refusal takes no token, so the app asks again and answers 429 itself.
    if (rateLimiter && !rateLimiter.take(principal?.serviceId ?? 'anonymous', t).ok) return undefined;
    // Answered: one access for the eviction policy, as the app's read counts it (declined, the app counts it).
    cache.countHit(namespace, key);
    const requestId = requestIdFor(header(request, 'x-request-id'));
    const h = readHeaders(entry, { status: 'HIT', tier: 'edge', degraded: false, nowMs: t }, requestId);
    let answer: HitAnswer;
    if (ifNoneMatchHits(header(request, 'if-none-match'), h[headers.etag]!)) {
      answer = { status: 304, headers: h, body: null, entry };
    } else {
      h['Content-Type'] = entry.contentType;
      answer = { status: 200, headers: h, body: entry.value, entry };
    }
    const seconds = (performance.now() - started) / 1000;
    metrics.request('get', 'edge', 'hit', seconds);
    log?.({
      request_id: requestId,
      trace_id: activeTraceId(),
      operation: 'get',
      namespace,
      tier: 'edge',
      result: 'hit',
      status: answer.status,
      duration_ms: seconds * 1000,
    });
    return answer;
  };
}

/** How many `Authorization` values {@link authorizationTokens} remembers; past it, it starts over. */
export const rememberedAuthorizations = 4096;

/**
 * `bearerToken` (`shared/auth.ts`) remembered by the whole `Authorization`
 * value, so that a hit with a value seen before runs no expression and cuts
 * no string: one map lookup, and the token it returns is the same string
 * each time (its hash already computed for the verifier's own lookup). Only
 * the parsing is remembered; whether the token is still valid is asked of
 * the verifier on every request. A value that holds no bearer token is not
 * remembered. At most {@link rememberedAuthorizations} values; past that the
 * map is emptied and fills again (no recency bookkeeping on the hit path).
 */
export function authorizationTokens(): (authorization: string | null | undefined) => string | undefined {
  const tokens = new Map<string, string>();
  return (authorization) => {
    if (!authorization) return undefined;
    const known = tokens.get(authorization);
    if (known !== undefined) return known;
    const token = bearerToken(authorization);
    if (token === undefined) return undefined;
    if (tokens.size >= rememberedAuthorizations) tokens.clear();
    tokens.set(authorization, token);
    return token;
  };
}

/** The path of a request target: origin-form as it is, absolute-form without scheme and authority; no query. */
function pathOf(target: string): string | undefined {
  if (target.charCodeAt(0) === 47 /* / */) return target;
  const scheme = target.indexOf('://');
  if (scheme === -1) return undefined;
  const slash = target.indexOf('/', scheme + 3);
  return slash === -1 ? undefined : target.slice(slash);
}
