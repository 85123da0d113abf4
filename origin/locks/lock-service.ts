import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { CacheError, invalidInput } from '../../shared/errors.ts';
import { keySchema, namespaceSchema } from '../../shared/keys.ts';
import { connectionReady } from '../store/connection-ready.ts';
import type { TieredStore } from '../store/store.ts';
import { guardedLockStore } from './guarded.ts';
import type { LockMetrics } from './lock-metrics.ts';
import { noLockMetrics } from './lock-metrics.ts';
import type { LockGrant, LockHolder, LockStore } from './lock-store.ts';
import { memoryLockStore } from './memory.ts';
import { redisLockStore } from './redis.ts';

/** Longest lock TTL, seconds (one day). */
export const maxLockTtlSeconds = 86_400;
/** Longest time an acquire may wait for a held lock, seconds; larger `wait` values are capped to it (`LOCK_MAX_WAIT_SECONDS` may lower it). */
export const maxLockWaitSeconds = 30;

/** `ttl` of an acquire or renew: whole seconds, 1 to {@link maxLockTtlSeconds}. */
export const lockTtlSecondsSchema = z.coerce
  .number()
  .int('ttl must be a whole number of seconds')
  .min(1, 'ttl must be at least 1 second')
  .max(maxLockTtlSeconds, `ttl must be at most ${maxLockTtlSeconds} seconds`);
/** `wait` of an acquire: seconds (fractions allowed) from 0; capped at {@link maxLockWaitSeconds}. */
export const lockWaitSecondsSchema = z.coerce
  .number()
  .finite('wait must be a number of seconds')
  .min(0, 'wait must not be negative')
  .transform((s) => Math.min(s, maxLockWaitSeconds));
/**
 * A fencing token from the wire: a positive integer of at most 16 decimal
 * digits. One above 2^53 − 1 loses precision as a number, but no grant has
 * such a token (microseconds reach it in the year 2255), so it simply holds
 * nothing: LOCK_001, like any other token that is not the holder's.
 */
export const lockTokenSchema = z
  .string()
  .regex(/^[1-9][0-9]{0,15}$/, 'token must be a positive integer of at most 16 digits')
  .transform(Number);

/** Back-off of a waiting acquire, milliseconds: first delay and cap (doubling, full jitter). */
export const lockWaitBackoffMs = { initial: 10, max: 250 } as const;

/** Validates a lock's namespace and name (the cache's namespace and key rules); throws CACHE_004. */
export function validLockAddress(namespace: string, name: string, operation: string): void {
  const ns = namespaceSchema.safeParse(namespace);
  if (!ns.success) throw invalidInput(ns.error, { namespace, operation });
  const n = keySchema.safeParse(name);
  if (!n.success) throw invalidInput(n.error, { name, operation });
}

/** Parses a value with a schema; a miss is CACHE_004 naming `field`. */
export function lockParam<T>(schema: z.ZodType<T>, value: unknown, field: string, operation: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidInput(parsed.error, { [field]: value, operation });
  return parsed.data;
}

function notHolder(namespace: string, name: string, operation: string, holder?: LockHolder): CacheError {
  return new CacheError('LOCK_001', holder ? 'Lock is held' : 'Token does not hold the lock', {
    details: { namespace, name, operation, ...(holder ? { expires_at_ms: holder.expiresAtMs } : {}) },
  });
}

/**
 * Picks the lock store for the origin's store: Redis (standalone or Cluster)
 * behind the same circuit breaker as the cache, never its local fallback
 * tier; the in-process store for the embedded memory store.
 */
export function lockStoreFor(store: TieredStore, onError?: (operation: string, error: unknown) => void): LockStore {
  if (store.redisClient && store.resilience) {
    return guardedLockStore(redisLockStore(store.redisClient), store.resilience.breaker, {
      ready: connectionReady(store.redisClient),
      onError,
    });
  }
  return memoryLockStore();
}

/**
 * Distributed locks with fencing tokens, shared by REST and gRPC: input
 * rules, the bounded wait, and metrics over a {@link LockStore}.
 *
 * Errors: CACHE_004 bad input; LOCK_001 (409) lock held, or a token that does
 * not hold it; CACHE_001 (404) inspecting a free lock; CACHE_005 (503/504)
 * store unavailable.
 */
export class LockService {
  readonly #store: LockStore;
  readonly #metrics: LockMetrics;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #maxWaitSeconds: number;

  constructor(options: {
    store: LockStore;
    metrics?: LockMetrics;
    /** Cap on `wait`, seconds (`LOCK_MAX_WAIT_SECONDS`); default and ceiling {@link maxLockWaitSeconds}. */
    maxWaitSeconds?: number;
    /** Resolves after `ms`; rejects when `signal` aborts. Default: a timer. */
    sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  }) {
    this.#store = options.store;
    this.#metrics = options.metrics ?? noLockMetrics;
    this.#maxWaitSeconds = Math.min(options.maxWaitSeconds ?? maxLockWaitSeconds, maxLockWaitSeconds);
    this.#sleep = options.sleep ?? ((ms, signal) => delay(ms, undefined, { signal }));
  }

  /**
   * Acquires, waiting up to `waitSeconds` for a held lock by polling the store
   * with exponential back-off and full jitter ({@link lockWaitBackoffMs}), and
   * never past the holder's expiry.
   * @throws CacheError LOCK_001 when still held when the wait ends.
   */
  async acquire(
    namespace: string,
    name: string,
    ttlSeconds: number,
    waitSeconds = 0,
    signal?: AbortSignal,
  ): Promise<LockGrant> {
    const deadline = Date.now() + Math.min(waitSeconds, this.#maxWaitSeconds) * 1000;
    let backoffMs: number = lockWaitBackoffMs.initial;
    let contended = false;
    for (;;) {
      const outcome = await this.#store.acquire(namespace, name, ttlSeconds * 1000);
      if (outcome.acquired) {
        if (outcome.previousExpired) this.#metrics.expired();
        this.#metrics.acquired(namespace, name, outcome.grant.token, outcome.grant.expiresAtMs);
        return outcome.grant;
      }
      if (!contended) this.#metrics.contended();
      contended = true;
      const left = deadline - Date.now();
      if (left <= 0) throw notHolder(namespace, name, 'lock_acquire', outcome.holder);
      const untilExpiry = Math.max(1, outcome.holder.expiresAtMs - Date.now());
      try {
        await this.#sleep(Math.min(left, untilExpiry, Math.ceil(Math.random() * backoffMs)), signal);
      } catch (error) {
        // The caller went away (or its deadline passed) while waiting.
        throw new CacheError('CACHE_005', 'Acquire cancelled while waiting', {
          details: { namespace, name, operation: 'lock_acquire' },
          cause: error,
        });
      }
      backoffMs = Math.min(backoffMs * 2, lockWaitBackoffMs.max);
    }
  }

  /** @throws CacheError LOCK_001 when `token` does not hold the lock (another grant, or it lapsed). */
  async renew(namespace: string, name: string, token: number, ttlSeconds: number): Promise<LockGrant> {
    const grant = await this.#store.renew(namespace, name, token, ttlSeconds * 1000);
    if (!grant) throw notHolder(namespace, name, 'lock_renew');
    this.#metrics.renewed(namespace, name, token, grant.expiresAtMs);
    return grant;
  }

  /** @throws CacheError LOCK_001 when `token` does not hold the lock. */
  async release(namespace: string, name: string, token: number): Promise<void> {
    const { released } = await this.#store.release(namespace, name, token);
    if (!released) throw notHolder(namespace, name, 'lock_release');
    this.#metrics.released(namespace, name, token);
  }

  /** @throws CacheError CACHE_001 when nobody holds the lock. */
  async inspect(namespace: string, name: string): Promise<LockHolder> {
    const holder = await this.#store.inspect(namespace, name);
    if (!holder)
      throw new CacheError('CACHE_001', 'Lock not held', { details: { namespace, name, operation: 'lock_get' } });
    return holder;
  }
}
