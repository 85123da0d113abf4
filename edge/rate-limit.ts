import type { MiddlewareHandler } from 'hono';
import { LRUCache } from 'lru-cache';
import { principalOf } from '../shared/auth-http.ts';
import { CacheError } from '../shared/errors.ts';

/** Options of {@link TokenBucketLimiter}. */
export interface RateLimitOptions {
  /** Tokens added per second per caller (sustained requests per second). */
  readonly ratePerSecond: number;
  /** Bucket size: the largest burst a caller may send at once. */
  readonly burst: number;
  /** Callers tracked at once; the least recently seen are forgotten (and start full again). Default 10 000. */
  readonly maxCallers?: number;
}

/** The answer for one request: admitted, or refused with the wait until a token is there (ms). */
export type RateDecision = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number };

interface Bucket {
  tokens: number;
  atMs: number;
}

/**
 * One token bucket per caller (the classic shaping algorithm; e.g. RFC 2697
 * §3 for its metering form): a bucket of `burst` tokens refills at
 * `ratePerSecond`; each request takes one or is refused. Pure: the clock is
 * passed in, so properties run on a fake clock.
 */
export class TokenBucketLimiter {
  readonly #o: RateLimitOptions;
  readonly #buckets: LRUCache<string, Bucket>;

  constructor(options: RateLimitOptions) {
    if (!(options.ratePerSecond > 0) || !(options.burst >= 1)) throw new Error('rate must be > 0 and burst ≥ 1');
    this.#o = options;
    this.#buckets = new LRUCache({ max: options.maxCallers ?? 10_000 });
  }

  /** Takes one token from `caller`'s bucket at `nowMs` (Unix ms). */
  take(caller: string, nowMs: number): RateDecision {
    const { ratePerSecond, burst } = this.#o;
    const bucket = this.#buckets.get(caller) ?? { tokens: burst, atMs: nowMs };
    const elapsedMs = Math.max(0, nowMs - bucket.atMs);
    bucket.tokens = Math.min(burst, bucket.tokens + (elapsedMs * ratePerSecond) / 1000);
    bucket.atMs = Math.max(bucket.atMs, nowMs);
    this.#buckets.set(caller, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / ratePerSecond) };
  }
}

/**
 * Edge middleware: one bucket per `service_id` of the verified token, or one
 * shared `anonymous` bucket when authentication is off. A refused request is
 * 429 CACHE_005 with `Retry-After` in whole seconds (RFC 9110 §10.2.3).
 */
export function rateLimitMiddleware(limiter: TokenBucketLimiter, now: () => number = Date.now): MiddlewareHandler {
  return async (c, next) => {
    const caller = principalOf(c)?.serviceId ?? 'anonymous';
    const decision = limiter.take(caller, now());
    if (!decision.ok) {
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      c.header('Retry-After', String(seconds));
      throw new CacheError('CACHE_005', 'Rate limit exceeded', { status: 429, details: { retry_after_s: seconds } });
    }
    return next();
  };
}

/** The limiter `EDGE_RATE_LIMIT_RPS` / `EDGE_RATE_LIMIT_BURST` ask for, or undefined when the rate is 0 (off). */
export function rateLimiterFromConfig(config: {
  EDGE_RATE_LIMIT_RPS: number;
  EDGE_RATE_LIMIT_BURST?: number;
}): TokenBucketLimiter | undefined {
  if (config.EDGE_RATE_LIMIT_RPS <= 0) return undefined;
  const burst = config.EDGE_RATE_LIMIT_BURST ?? Math.max(1, Math.ceil(config.EDGE_RATE_LIMIT_RPS * 2));
  return new TokenBucketLimiter({ ratePerSecond: config.EDGE_RATE_LIMIT_RPS, burst });
}
