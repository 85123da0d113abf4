/**
 * Typed client of the origin's lock RPCs (docs/locks.md): distributed locks
 * with fencing tokens, over the same transport as the cache client.
 *
 * Errors are `ConnectError`s: ABORTED (`x-cache-error-code: LOCK_001`) when
 * the lock is held or a token no longer holds it, UNAVAILABLE (CACHE_005)
 * while the store is unavailable, INVALID_ARGUMENT (CACHE_004) bad input.
 */

import { type CallOptions, type Client, createClient } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-web';
import { CacheService } from '../gen/strata/cache/v1/cache_pb.js';
import type { CacheClientOptions, CallOpts } from './index.ts';

/** A grant: the fencing token to present to the protected resource, and when the lease ends. */
export interface LockLease {
  /** Larger than every earlier grant's token of this lock. */
  readonly token: number;
  /** Unix milliseconds (the store's clock). */
  readonly expiresAtMs: number;
}

/** Options of an acquire. */
export interface AcquireOpts extends CallOpts {
  /** Lease, whole seconds (1 … 86400). */
  readonly ttlSeconds: number;
  /** How long the origin waits for a held lock, seconds (capped at 30); 0 or absent = answer at once. */
  readonly waitSeconds?: number;
}

/** What {@link LockClient.withLock} hands to the guarded function. */
export interface HeldLock extends LockLease {
  /** Aborts when a renewal finds the lock lost (lease expired and granted elsewhere); `reason` is the error. */
  readonly signal: AbortSignal;
}

/** Lock operations in one namespace. */
export class LockClient {
  /** The generated Connect client. */
  readonly rpc: Client<typeof CacheService>;
  readonly namespace: string;
  readonly #timeoutMs: number | undefined;

  constructor(options: CacheClientOptions) {
    this.rpc = createClient(CacheService, options.transport ?? createGrpcWebTransport({ baseUrl: options.baseUrl }));
    this.namespace = options.namespace;
    this.#timeoutMs = options.timeoutMs;
  }

  /** Acquires `name`, waiting up to `waitSeconds`. @throws ConnectError ABORTED (LOCK_001) when still held. */
  async acquire(name: string, opts: AcquireOpts): Promise<LockLease> {
    const res = await this.rpc.acquireLock(
      { namespace: this.namespace, name, ttlSeconds: BigInt(opts.ttlSeconds), waitSeconds: opts.waitSeconds ?? 0 },
      this.#call(opts, (opts.waitSeconds ?? 0) * 1000),
    );
    return { token: Number(res.token), expiresAtMs: Number(res.expiresAtMs) };
  }

  /** Extends the lease held by `token` to `ttlSeconds` from now. @throws ConnectError ABORTED (LOCK_001) when `token` no longer holds it. */
  async renew(name: string, token: number, ttlSeconds: number, opts: CallOpts = {}): Promise<LockLease> {
    const res = await this.rpc.renewLock(
      { namespace: this.namespace, name, token: BigInt(token), ttlSeconds: BigInt(ttlSeconds) },
      this.#call(opts),
    );
    return { token: Number(res.token), expiresAtMs: Number(res.expiresAtMs) };
  }

  /** Releases the lock held by `token`. @throws ConnectError ABORTED (LOCK_001) when `token` does not hold it. */
  async release(name: string, token: number, opts: CallOpts = {}): Promise<void> {
    await this.rpc.releaseLock({ namespace: this.namespace, name, token: BigInt(token) }, this.#call(opts));
  }

  /** The current holder, or null when the lock is free. */
  async get(name: string, opts: CallOpts = {}): Promise<LockLease | null> {
    const res = await this.rpc.getLock({ namespace: this.namespace, name }, this.#call(opts));
    return res.held ? { token: Number(res.token), expiresAtMs: Number(res.expiresAtMs) } : null;
  }

  /**
   * Runs `fn` holding `name`: acquires (waiting up to `waitSeconds`), renews
   * the lease every `ttlSeconds / 3` while `fn` runs, and releases in
   * `finally`. `fn` gets the fencing token, to present to the resource it
   * protects, and a signal that aborts if a renewal finds the lock lost.
   *
   * A failed release is not thrown (it would hide `fn`'s outcome): the lease
   * then ends by its TTL.
   * @throws ConnectError ABORTED (LOCK_001) when the lock stays held past `waitSeconds`; whatever `fn` throws.
   */
  async withLock<T>(
    name: string,
    fn: (lock: HeldLock) => Promise<T>,
    opts: { readonly ttlSeconds: number; readonly waitSeconds?: number },
  ): Promise<T> {
    const lease = await this.acquire(name, opts);
    const lost = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    const renewEveryMs = (opts.ttlSeconds * 1000) / 3;
    const schedule = () => {
      timer = setTimeout(async () => {
        try {
          await this.renew(name, lease.token, opts.ttlSeconds);
          if (!done) schedule();
        } catch (error) {
          // A transient failure retries at the next tick while the lease may still run; a lost lock stops.
          if (isLockLost(error)) lost.abort(error);
          else if (!done) schedule();
        }
      }, renewEveryMs);
    };
    schedule();
    try {
      return await fn({ ...lease, signal: lost.signal });
    } finally {
      done = true;
      clearTimeout(timer);
      if (!lost.signal.aborted) await this.release(name, lease.token).catch(() => {});
    }
  }

  #call(opts: CallOpts, extraMs = 0): CallOptions {
    const call: CallOptions = {};
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    if (timeoutMs !== undefined) call.timeoutMs = timeoutMs + extraMs;
    if (opts.signal) call.signal = opts.signal;
    return call;
  }
}

function isLockLost(error: unknown): boolean {
  const metadata = (error as { metadata?: Headers } | null)?.metadata;
  return metadata?.get('x-cache-error-code') === 'LOCK_001';
}

/** Creates a {@link LockClient} (gRPC-web over `fetch` unless a transport is given). */
export function createLockClient(options: CacheClientOptions): LockClient {
  return new LockClient(options);
}
