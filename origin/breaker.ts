import {
  BrokenCircuitError,
  CircuitState,
  circuitBreaker,
  ExponentialBackoff,
  handleAll,
  type IBackoff,
  type IBackoffFactory,
  type IBreaker,
  TaskCancelledError,
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
 * The calls started in one millisecond: they share one `AbortSignal` and one
 * timer, which times out every call of the slice still running.
 */
interface Slice {
  /** `Date.now()` (ms) when the slice's calls started. */
  readonly startedAtMs: number;
  readonly controller: AbortController;
  /** How to reject each call of the slice still running. */
  readonly pending: Set<(error: Error) => void>;
  /** Times the slice out; it keeps the process alive only while a call of the slice runs. */
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * Per-call timeouts shared by the calls of each millisecond: one
 * `AbortController` and one timer per millisecond in which calls start,
 * instead of an `AbortController`, a timer, abort listeners and a
 * `Promise.race` per call (what cockatiel's `timeout` policy allocates; on the
 * origin's read path that was a measurable share of a Redis hit's CPU).
 *
 * A call is timed out `timeoutMs` to `timeoutMs + 1` ms after it started
 * (never earlier): its promise rejects with cockatiel's `TaskCancelledError`
 * (as the `timeout` policy's aggressive strategy does) and its signal aborts.
 * As with a timer per call, a running call keeps the process alive until it
 * settles or times out, and a settled one does not.
 */
class SharedDeadlines {
  readonly #timeoutMs: number;
  #current: Slice | undefined;

  /** @param timeoutMs per-call timeout, milliseconds. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Runs `call` with the current slice's signal; rejects with
   * `TaskCancelledError` when it has not settled by its deadline.
   */
  run<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const slice = this.#slice();
    return new Promise<T>((resolve, reject) => {
      if (slice.pending.size === 0) slice.timer.ref();
      slice.pending.add(reject);
      const settled = (): void => {
        slice.pending.delete(reject);
        if (slice.pending.size === 0) slice.timer.unref();
      };
      let running: Promise<T>;
      try {
        running = call(slice.controller.signal);
      } catch (error) {
        settled();
        reject(error);
        return;
      }
      running.then(
        (value) => {
          settled();
          resolve(value);
        },
        (error: unknown) => {
          settled();
          reject(error);
        },
      );
    });
  }

  #slice(): Slice {
    const now = Date.now();
    const current = this.#current;
    if (current?.startedAtMs === now) return current;
    // +1: a call that started late in the slice's millisecond still gets its full `timeoutMs`.
    const timer = setTimeout(() => this.#expire(slice), this.#timeoutMs + 1).unref();
    const slice: Slice = { startedAtMs: now, controller: new AbortController(), pending: new Set(), timer };
    this.#current = slice;
    return slice;
  }

  #expire(slice: Slice): void {
    if (this.#current === slice) this.#current = undefined;
    if (slice.pending.size === 0) return;
    const rejects = [...slice.pending];
    slice.pending.clear();
    slice.controller.abort();
    for (const reject of rejects) reject(new TaskCancelledError(`Operation timed out after ${this.#timeoutMs}ms`));
  }
}

/**
 * The circuit breaker around every Redis call: `retry (reads only) → breaker
 * → timeout`, the breaker's state machine cockatiel's.
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
 * - **Timeout**: `callTimeoutMs` per call (to `callTimeoutMs + 1` ms), kept
 *   by {@link SharedDeadlines}; the call's `AbortSignal` aborts when it times
 *   out, and it rejects with cockatiel's `TaskCancelledError`.
 * - **Retries**: exponential backoff with decorrelated jitter
 *   (cockatiel's `ExponentialBackoff`; "Exponential Backoff And Jitter",
 *   AWS Architecture Blog, 2015), only when the caller marks the call
 *   idempotent, and never for a refused call.
 *
 * Clock: cockatiel and the timeouts read `Date.now()` and `setTimeout`, so
 * tests fake both with vitest's fake timers.
 */
export class RedisBreaker {
  readonly options: BreakerOptions;
  readonly #breaker;
  readonly #deadlines: SharedDeadlines;
  readonly #backoff: IBackoffFactory<unknown>;
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
    this.#deadlines = new SharedDeadlines(o.callTimeoutMs);
    this.#backoff = new ExponentialBackoff({ initialDelay: o.retryInitialDelayMs, maxDelay: o.callTimeoutMs });
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
   * @param call the Redis call; `signal` aborts when it times out.
   * @param idempotent true for reads: retried with backoff on failure (`readAttempts` in all).
   * @throws CircuitOpenError when the circuit is not closed (Redis is not called);
   *   cockatiel's `TaskCancelledError` when the call timed out; otherwise the call's own error.
   */
  async run<T>(call: (signal: AbortSignal) => Promise<T>, idempotent: boolean): Promise<T> {
    if (this.#breaker.state !== CircuitState.Closed) throw new CircuitOpenError(this.state);
    const attempts = idempotent ? this.options.readAttempts : 1;
    let backoff: IBackoff<unknown> | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#breaker.execute(() => {
          // A retry may come back after the circuit opened: refuse rather than queue.
          if (this.#breaker.state === CircuitState.Open) throw new CircuitOpenError('open');
          return this.#deadlines.run(call);
        });
      } catch (error) {
        if (error instanceof BrokenCircuitError) throw new CircuitOpenError(this.state);
        if (attempt >= attempts || error instanceof CircuitOpenError) throw error;
      }
      const next: IBackoff<unknown> = backoff ? backoff.next(undefined) : this.#backoff.next(undefined);
      backoff = next;
      await new Promise((resolve) => setTimeout(resolve, next.duration));
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
      await this.#breaker.execute(() => this.#deadlines.run(call));
      return true;
    } catch {
      return false;
    }
  }
}
