/**
 * Retries and the client-side circuit breaker of the typed client
 * (client/index.ts), built from cockatiel policies, and the client's typed
 * errors. Mirrors the Python and Go clients (clients/).
 */

import { Code, ConnectError } from '@connectrpc/connect';
import {
  BrokenCircuitError,
  CircuitState,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  type IBreaker,
  type IPolicy,
  noop,
  retry,
  wrap,
} from 'cockatiel';
import type { ErrorCode } from '../shared/errors.ts';

/**
 * Client-side circuit breaker. Opens when, over the last `windowMs`, at least
 * `minRequests` calls were made and the share that failed server-side
 * (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, ABORTED) reached
 * `threshold`; stays open `halfOpenAfterMs`, then lets one trial call through
 * (half-open), which closes it on success or opens it again. Client errors
 * (CACHE_003, CACHE_004, AUTH_*) are not counted; in half-open they close the
 * breaker, since the origin answered.
 */
export interface ClientBreakerOptions {
  /** Failure ratio that opens the breaker, in (0, 1); default 0.5 (the ICD's). */
  readonly threshold?: number;
  /** Sliding window, milliseconds; default 60 000 (the ICD's 60 s). */
  readonly windowMs?: number;
  /** Calls the window must hold before the breaker may open; default 20 (the ICD's). */
  readonly minRequests?: number;
  /** Time open before a trial call, milliseconds; default 30 000. */
  readonly halfOpenAfterMs?: number;
}

/**
 * Retries of idempotent calls (get, getMany, delete, purge, health) after
 * UNAVAILABLE: exponential back-off with decorrelated jitter (cockatiel's
 * `ExponentialBackoff`; "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
 */
export interface ClientRetryOptions {
  /** Retries after the first attempt; default 3 (the ICD's). 0 disables. */
  readonly retries?: number;
  /** First back-off, milliseconds; default 100. */
  readonly initialDelayMs?: number;
  /** Largest back-off, milliseconds; default 2 000. */
  readonly maxDelayMs?: number;
}

const icdByRpc: Partial<Record<Code, ErrorCode>> = {
  [Code.NotFound]: 'CACHE_001',
  [Code.ResourceExhausted]: 'CACHE_003',
  [Code.InvalidArgument]: 'CACHE_004',
  [Code.Unauthenticated]: 'AUTH_001',
  [Code.PermissionDenied]: 'AUTH_002',
  [Code.FailedPrecondition]: 'CACHE_006',
};

/**
 * A failed call. Still a `ConnectError` (`code` is the gRPC/Connect code,
 * `metadata` the response's headers and trailers); `errorCode` is the ICD
 * code the origin sent in `x-cache-error-code` (CACHE_001 … CACHE_006,
 * AUTH_001, AUTH_002), or the one its `code` maps to when nothing from the
 * origin answered (a proxy's 503, a refused connection, a client deadline:
 * CACHE_005). `attempts` counts how many times the call was sent.
 *
 * Its `name` stays `ConnectError`, which `ConnectError.from` and
 * `instanceof ConnectError` need to recognise a subclass.
 */
export class CacheClientError extends ConnectError {
  readonly errorCode: ErrorCode;
  readonly attempts: number;

  /** ConnectError's own check accepts any ConnectError-shaped value; subclasses use the prototype chain. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class `instanceof` names (CircuitOpenError inherits this).
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  constructor(cause: ConnectError, attempts: number) {
    super(cause.rawMessage, cause.code, cause.metadata, [], cause);
    this.details.push(...cause.details);
    const sent = cause.metadata.get('x-cache-error-code');
    this.errorCode = (sent as ErrorCode | null) ?? icdByRpc[cause.code] ?? 'CACHE_005';
    this.attempts = attempts;
  }
}

/** CACHE_005 raised by the client itself, without calling the origin: its circuit breaker is open. */
export class CircuitOpenError extends CacheClientError {
  constructor(attempts: number) {
    super(new ConnectError('client circuit breaker is open', Code.Unavailable), attempts);
  }
}

/** Breaker state: `closed`, `open` or `half-open`. */
export type ClientBreakerState = 'closed' | 'open' | 'half-open';

const serverSide = new Set<Code>([Code.Unavailable, Code.DeadlineExceeded, Code.Internal, Code.Unknown, Code.Aborted]);

function codeOf(error: unknown): Code {
  return error instanceof ConnectError ? error.code : Code.Unknown;
}

/**
 * `fetch` rejects with a `TypeError` when the network fails (Fetch Standard,
 * "network error"), which connect-web reports as UNKNOWN. A refused or reset
 * connection is UNAVAILABLE for the Python and Go clients (and for gRPC), so
 * it is here too: retried when idempotent, and counted by the breaker.
 */
export function networkFailureAsUnavailable(error: unknown): unknown {
  const e = error instanceof ConnectError ? error : undefined;
  const network = error instanceof TypeError || (e?.code === Code.Unknown && e.cause instanceof TypeError);
  if (!network) return error;
  return new ConnectError(e?.rawMessage ?? (error as Error).message, Code.Unavailable, e?.metadata, [], error);
}

/**
 * The opening rule of {@link ClientBreakerOptions} for cockatiel's
 * `circuitBreaker` (which runs the open → half-open → closed cycle): every
 * call of the last `windowMs`, kept one by one. cockatiel's own
 * `SamplingBreaker` is not used because its ring of buckets only advances
 * one bucket per call, so after an idle gap failures older than the window
 * still count.
 */
export class SlidingWindowBreaker implements IBreaker {
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #minRequests: number;
  #calls: { at: number; failed: boolean }[] = [];
  #head = 0;
  #failures = 0;

  constructor(threshold: number, windowMs: number, minRequests: number) {
    this.#threshold = threshold;
    this.#windowMs = windowMs;
    this.#minRequests = minRequests;
  }

  get state(): unknown {
    return this.#calls.slice(this.#head);
  }

  set state(value: unknown) {
    this.#calls = [...(value as { at: number; failed: boolean }[])];
    this.#head = 0;
    this.#failures = this.#calls.filter((c) => c.failed).length;
  }

  success(state: CircuitState): void {
    if (state === CircuitState.HalfOpen) this.state = [];
    else this.#push(false);
  }

  failure(state: CircuitState): boolean {
    if (state !== CircuitState.Closed) return true;
    this.#push(true);
    const count = this.#calls.length - this.#head;
    if (count < this.#minRequests || this.#failures / count < this.#threshold) return false;
    this.state = [];
    return true;
  }

  #push(failed: boolean): void {
    const now = Date.now();
    while (this.#head < this.#calls.length && now - (this.#calls[this.#head]?.at ?? now) > this.#windowMs) {
      if (this.#calls[this.#head]?.failed) this.#failures--;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#calls.length) {
      this.#calls = this.#calls.slice(this.#head);
      this.#head = 0;
    }
    this.#calls.push({ at: now, failed });
    if (failed) this.#failures++;
  }
}

/** The policies one client uses: `retry (idempotent calls only) → breaker`. */
export class ClientPolicies {
  readonly #breaker;
  readonly #retrying: IPolicy;
  readonly #once: IPolicy;
  readonly #listeners = new Set<(state: ClientBreakerState) => void>();

  constructor(breaker: ClientBreakerOptions | false, retryOptions: ClientRetryOptions) {
    const b = { threshold: 0.5, windowMs: 60_000, minRequests: 20, halfOpenAfterMs: 30_000, ...breaker };
    this.#breaker = circuitBreaker(
      handleWhen((e) => serverSide.has(codeOf(e))),
      { halfOpenAfter: b.halfOpenAfterMs, breaker: new SlidingWindowBreaker(b.threshold, b.windowMs, b.minRequests) },
    );
    this.#breaker.onStateChange((s) => {
      for (const listener of this.#listeners) listener(stateName(s));
    });
    const retries = retryOptions.retries ?? 3;
    const backoff = new ExponentialBackoff({
      initialDelay: retryOptions.initialDelayMs ?? 100,
      maxDelay: retryOptions.maxDelayMs ?? 2_000,
    });
    const again =
      retries > 0
        ? retry(
            handleWhen((e) => codeOf(e) === Code.Unavailable && !(e instanceof BrokenCircuitError)),
            { maxAttempts: retries, backoff },
          )
        : noop;
    this.#retrying = breaker === false ? again : wrap(again, this.#breaker);
    this.#once = breaker === false ? noop : this.#breaker;
  }

  /** Current breaker state (`closed` when the breaker is off). */
  get state(): ClientBreakerState {
    return stateName(this.#breaker.state);
  }

  /** Subscribes to breaker state changes; returns the unsubscribe function. */
  onStateChange(listener: (state: ClientBreakerState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs `attempt` (called once per try with its 1-based number) through the breaker, retried when idempotent.
   * @throws CacheClientError, or CircuitOpenError when the breaker refused the call.
   */
  async run<T>(idempotent: boolean, attempt: (n: number) => Promise<T>): Promise<T> {
    let n = 0;
    try {
      return await (idempotent ? this.#retrying : this.#once).execute(() => attempt(++n));
    } catch (error) {
      if (error instanceof BrokenCircuitError) throw new CircuitOpenError(n);
      throw new CacheClientError(ConnectError.from(error), n);
    }
  }
}

function stateName(s: CircuitState): ClientBreakerState {
  if (s === CircuitState.Open || s === CircuitState.Isolated) return 'open';
  return s === CircuitState.HalfOpen ? 'half-open' : 'closed';
}
