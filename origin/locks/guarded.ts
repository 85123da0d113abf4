import { TaskCancelledError } from 'cockatiel';
import { CacheError } from '../../shared/errors.ts';
import type { RedisBreaker } from '../breaker.ts';
import type { LockStore } from './lock-store.ts';

/**
 * Puts a Redis {@link LockStore} behind the origin's circuit breaker. Unlike
 * cache reads and writes, a lock call never falls back to the origin's local
 * tier: a lock granted by one origin's memory would not exclude another
 * origin. While the breaker is open, or when Redis fails or times out, the
 * call fails with CACHE_005 (503; 504 on the per-call timeout).
 *
 * A call that timed out may still have run on Redis: an acquire then holds
 * the lock, unknown to the caller, until its TTL runs out.
 */
export function guardedLockStore(
  inner: LockStore,
  breaker: RedisBreaker,
  options: {
    /** Resolves when the connection can take a call (`store/connection-ready.ts`); rejects to fail fast. */
    ready?: (signal: AbortSignal) => Promise<void>;
    onError?: (operation: string, error: unknown) => void;
  } = {},
): LockStore {
  const { ready, onError } = options;
  async function call<T>(operation: string, run: () => Promise<T>, idempotent: boolean): Promise<T> {
    try {
      return await breaker.run(async (signal) => {
        await ready?.(signal);
        return await run();
      }, idempotent);
    } catch (error) {
      onError?.(operation, error);
      const timedOut = error instanceof TaskCancelledError;
      throw new CacheError('CACHE_005', timedOut ? 'Lock store timed out' : 'Lock store unavailable', {
        status: timedOut ? 504 : 503,
        details: { operation, breaker: breaker.state },
        cause: error,
      });
    }
  }
  return {
    acquire: (namespace, name, ttlMs) => call('lock_acquire', () => inner.acquire(namespace, name, ttlMs), false),
    renew: (namespace, name, token, ttlMs) =>
      call('lock_renew', () => inner.renew(namespace, name, token, ttlMs), false),
    release: (namespace, name, token) => call('lock_release', () => inner.release(namespace, name, token), false),
    inspect: (namespace, name) => call('lock_get', () => inner.inspect(namespace, name), true),
  };
}
