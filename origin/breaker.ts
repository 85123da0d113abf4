import {
  BrokenCircuitError,
  CircuitState,
  circuitBreaker,
  ExponentialBackoff,
  handleAll,
  handleWhen,
  type IBreaker,
  type IPolicy,
  noop,
  retry,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';

/** Breaker settings. Defaults come from the ICD §9.2 `circuit_breaker` block. */
export interface BreakerOptions {
  /** Failure ratio that opens the circuit, in (0, 1). ICD: 0.5. */
  readonly threshold: number;
  /** Sampling window, milliseconds. ICD: 60 s. */
  readonly windowMs: number;
  /** Calls the window must hold before it may open. ICD: 20. */
  readonly minRequests: number;
  /** Cool-down before a half-open probe, milliseconds. */
  readonly halfOpenAfterMs: number;
  /** Per-call timeout, milliseconds; a call past it counts as a failure. */
  readonly callTimeoutMs: number;
  /** Attempts for an idempotent read (1 = no retry). */
  readonly readAttempts: number;
  /** First retry delay, milliseconds; doubles per attempt, with decorrelated jitter. */
  readonly retryInitialDelayMs: number;
}

/** Defaults: ICD §9.2 (threshold 0.5, window 60 s, min 20 requests) plus our timeouts. */
export const defaultBreakerOptions: BreakerOptions = {
  threshold: 0.5,
  windowMs: 60_000,
  minRequests: 20,
  halfOpenAfterMs: 5_000,
  callTimeoutMs: 300,
  readAttempts: 2,
  retryInitialDelayMs: 20,
};

/** Tolerance, in calls, for float rounding of `threshold × calls` when comparing the failure count. */
const ratioTolerance = 1e-6;

/** Buckets per window: a call counts for between 95% and 100% of `windowMs`. */
const windowBuckets = 20;

interface Bucket {
  /** `floor(ms / bucketMs)` of the calls counted here. */
  epoch: number;
  calls: number;
  failures: number;
}

/**
 * The opening rule (ICD §9.2: error rate ≥ `threshold` over the last
 * `windowMs`, once the window holds `minRequests` calls) as a cockatiel
 * `IBreaker`, counted in {@link windowBuckets} time buckets that are
 * dropped by the clock, not by later calls. cockatiel's own
 * `SamplingBreaker` is not used: its ring of buckets advances one bucket
 * per call, so after an idle gap failures older than the window still
 * counted (19 failures, a minute idle, one failure opened the circuit).
 * Memory is constant whatever the call rate.
 *
 * Window: a call counts while its bucket is one of the last 20, so for at
 * least `windowMs − windowMs/20` and never past `windowMs`.
 */
export class TimeWindowBreaker implements IBreaker {
  readonly #threshold: number;
  readonly #minRequests: number;
  readonly #bucketMs: number;
  #buckets: Bucket[] = [];

  /**
   * @param threshold failure ratio in (0, 1] that opens the circuit.
   * @param windowMs window, milliseconds (≥ 1).
   * @param minRequests calls the window must hold before it may open.
   */
  constructor(threshold: number, windowMs: number, minRequests: number) {
    this.#threshold = threshold;
    this.#minRequests = minRequests;
    this.#bucketMs = Math.max(1, windowMs / windowBuckets);
  }

  /** The live buckets (cockatiel serialises breakers through this). */
  get state(): unknown {
    return this.#live(Date.now()).map((b) => ({ ...b }));
  }

  set state(value: unknown) {
    this.#buckets = Array.isArray(value) ? (value as Bucket[]).map((b) => ({ ...b })) : [];
  }

  success(state: CircuitState): void {
    if (state === CircuitState.HalfOpen) this.#buckets = [];
    else this.#record(false);
  }

  failure(state: CircuitState): boolean {
    if (state !== CircuitState.Closed) return true;
    this.#record(true);
    let calls = 0;
    let failures = 0;
    for (const b of this.#buckets) {
      calls += b.calls;
      failures += b.failures;
    }
    if (calls < this.#minRequests || failures < this.#threshold * calls - ratioTolerance) return false;
    this.#buckets = [];
    return true;
  }

  #live(now: number): Bucket[] {
    const oldest = Math.floor(now / this.#bucketMs) - windowBuckets + 1;
    return this.#buckets.filter((b) => b.epoch >= oldest);
  }

  #record(failed: boolean): void {
    const now = Date.now();
    const epoch = Math.floor(now / this.#bucketMs);
    let last = this.#buckets.at(-1);
    if (last?.epoch !== epoch) {
      this.#buckets = this.#live(now);
      last = { epoch, calls: 0, failures: 0 };
      this.#buckets.push(last);
    }
    last.calls += 1;
    if (failed) last.failures += 1;
  }
}

/** Breaker states as reported by `/ready` and the metrics gauge. */
export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

const stateNames: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/** Thrown when a call is refused because the circuit is not closed (no Redis call was made). */
export class CircuitOpenError extends Error {
  constructor(state: BreakerState) {
    super(`circuit ${state}: Redis not called`);
    this.name = 'CircuitOpenError';
  }
}

/**
 * The circuit breaker around every Redis call, built from cockatiel
 * policies: `retry (reads only) → breaker → timeout`.
 *
 * - **Breaker**: cockatiel's `circuitBreaker` with {@link TimeWindowBreaker}
 *   — opens when at least `threshold` of the calls in the last `windowMs`
 *   failed (ICD §9.2: error rate ≥ 0.5) and the window holds at least
 *   `minRequests` calls. A timeout counts as a failure.
 * - **Requests never wait on a circuit that is not closed**: cockatiel lets
 *   one probe through in half-open and parks every other caller until the
 *   probe settles, which would make requests wait for a dead Redis.
 *   {@link run} therefore fails fast with {@link CircuitOpenError} unless the
 *   circuit is closed, and only {@link probe} (the origin's recovery loop)
 *   goes through an open circuit; after `halfOpenAfterMs` cockatiel turns it
 *   half-open and lets the probe call Redis.
 * - **Retries**: exponential backoff with decorrelated jitter
 *   (cockatiel's `ExponentialBackoff`; "Exponential Backoff And Jitter",
 *   AWS Architecture Blog, 2015), only when the caller marks the call
 *   idempotent, and never for a refused call.
 *
 * Clock: cockatiel reads `Date.now()` and `setTimeout`, so tests fake both
 * with vitest's fake timers.
 */
export class RedisBreaker {
  readonly options: BreakerOptions;
  readonly #breaker;
  readonly #read: IPolicy;
  readonly #write: IPolicy;
  readonly #listeners = new Set<(state: BreakerState) => void>();

  constructor(options: Partial<BreakerOptions> = {}) {
    this.options = { ...defaultBreakerOptions, ...options };
    const o = this.options;
    this.#breaker = circuitBreaker(handleAll, {
      halfOpenAfter: o.halfOpenAfterMs,
      breaker: new TimeWindowBreaker(o.threshold, o.windowMs, o.minRequests),
    });
    this.#breaker.onStateChange((s) => {
      for (const listener of this.#listeners) listener(stateNames[s]);
    });
    // abortOnReturn: false — cockatiel would otherwise abort (and build a DOMException for) every finished
    // call's signal; only a timeout needs to abort, which is what the connection gate listens for.
    const perCall = timeout(o.callTimeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false });
    this.#write = wrap(this.#breaker, perCall);
    const retries =
      o.readAttempts > 1
        ? retry(
            handleWhen((e) => !(e instanceof BrokenCircuitError) && !(e instanceof CircuitOpenError)),
            {
              maxAttempts: o.readAttempts - 1,
              backoff: new ExponentialBackoff({ initialDelay: o.retryInitialDelayMs, maxDelay: o.callTimeoutMs }),
            },
          )
        : noop;
    this.#read = wrap(retries, this.#breaker, perCall);
  }

  /** Current state. */
  get state(): BreakerState {
    return stateNames[this.#breaker.state];
  }

  /** Subscribes to state changes; returns the unsubscribe function. */
  onStateChange(listener: (state: BreakerState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs `call` through the breaker when it is closed.
   * @param idempotent true for reads: retried with backoff on failure.
   * @throws CircuitOpenError when the circuit is not closed (Redis is not called);
   *   cockatiel's `TaskCancelledError` when the call timed out; otherwise the call's own error.
   */
  async run<T>(call: (signal: AbortSignal) => Promise<T>, idempotent: boolean): Promise<T> {
    if (this.#breaker.state !== CircuitState.Closed) throw new CircuitOpenError(this.state);
    const policy = idempotent ? this.#read : this.#write;
    try {
      return await policy.execute(({ signal }) => {
        // The retry may come back after the circuit opened: refuse rather than queue.
        if (this.#breaker.state === CircuitState.Open) throw new CircuitOpenError('open');
        return call(signal);
      });
    } catch (error) {
      if (error instanceof BrokenCircuitError) throw new CircuitOpenError(this.state);
      throw error;
    }
  }

  /**
   * A recovery probe: goes through the breaker in any state. While the
   * cool-down runs cockatiel refuses it at once; after it, the probe is the
   * half-open call whose success closes the circuit.
   * @returns true when `call` ran and succeeded.
   */
  async probe(call: (signal: AbortSignal) => Promise<unknown>): Promise<boolean> {
    try {
      await this.#write.execute(({ signal }) => call(signal));
      return true;
    } catch {
      return false;
    }
  }
}
