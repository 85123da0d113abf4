import type { PurgeConfirmation } from './purge-source.ts';

export interface LeaseOptions {
  /**
   * Milliseconds the edge may serve from its tier after the last confirmation
   * with a live tail (`EDGE_LEASE_MS`).
   */
  readonly leaseMs: number;
  /**
   * Milliseconds a view may age (since its last confirmation of any kind)
   * before a read first asks for a renewal: `EDGE_PURGE_POLL_MS` for a poll
   * source, the lease itself for a stream (whose heartbeats renew it unasked).
   */
  readonly renewAfterMs: number;
  /**
   * Milliseconds after a renewal that did not restore the lease during which
   * no other renewal is started (reads revalidate per key meanwhile).
   * Default: the smaller of `renewAfterMs` and a third of the lease.
   */
  readonly retryAfterMs?: number;
  /** The purge source's last confirmation (`PurgeSubscription.confirmation`). */
  readonly confirmation: () => PurgeConfirmation | null;
  /**
   * One renewal attempt: a poll, or a reconnect of the stream that resolves
   * once it has been confirmed or failed. Its outcome is read back through
   * `confirmation`; a rejection counts as a failed attempt.
   */
  readonly renew: () => Promise<unknown>;
  /** Clock, Unix ms (the clock confirmations are stamped with). */
  readonly now?: () => number;
  /** Told each time a lease that held is found lapsed. */
  readonly onLapse?: () => void;
}

/**
 * An edge's lease on its tier (Gray and Cheriton, "Leases", SOSP 1989): the
 * edge may serve an entry from its tier only while the origin confirmed,
 * within `leaseMs`, that the edge's view of the purge log was complete and
 * the origin's own tail of the log was live (`tail_live`). Connected edges
 * drop purged values within the propagation time; an edge that lost contact
 * stops serving from its tier within the lease.
 *
 * When a read finds the view older than `renewAfterMs`, it joins one
 * renewal attempt (one at a time, shared by every read whatever its key);
 * only when that leaves the lease lapsed do reads fall back to per-key
 * revalidation (the caller's job). Pure: no I/O of its own, an injectable clock.
 */
export class Lease {
  readonly #o: LeaseOptions;
  readonly #now: () => number;
  readonly #retryAfterMs: number;
  #liveAtMs: number | null = null;
  #held = false;
  #renewal: Promise<boolean> | undefined;
  #failedAtMs: number | null = null;
  #lapses = 0;
  #renewals = 0;

  constructor(options: LeaseOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#retryAfterMs = options.retryAfterMs ?? Math.min(options.renewAfterMs, options.leaseMs / 3);
  }

  /** Milliseconds since the last confirmation with a live tail; null before the first. */
  get ageMs(): number | null {
    this.#observe();
    return this.#liveAtMs === null ? null : this.#now() - this.#liveAtMs;
  }

  /** Times a lease that held was found lapsed. */
  get lapses(): number {
    return this.#lapses;
  }

  /** Renewal attempts started so far. */
  get renewals(): number {
    return this.#renewals;
  }

  /** Whether the tier may be served now, without renewing. */
  get valid(): boolean {
    this.#observe();
    const held = this.#liveAtMs !== null && this.#now() - this.#liveAtMs < this.#o.leaseMs;
    if (this.#held && !held) {
      this.#lapses++;
      this.#o.onLapse?.();
    }
    this.#held = held;
    return held;
  }

  /**
   * Before serving from the tier: true at once while the view is younger than
   * `renewAfterMs` and the lease holds; otherwise joins (or starts) the one
   * renewal attempt and answers whether the lease holds after it. A renewal
   * that just failed is not retried for `retryAfterMs`: the answer is then
   * whether the lease still holds. Synchronous on the fast path (no
   * microtask on a hit).
   */
  ensure(): boolean | Promise<boolean> {
    const confirmation = this.#o.confirmation();
    const now = this.#now();
    const viewAgeMs = confirmation === null ? Number.POSITIVE_INFINITY : now - confirmation.atMs;
    if (viewAgeMs < this.#o.renewAfterMs && this.valid) return true;
    if (this.#renewal) return this.#renewal;
    if (this.#failedAtMs !== null && now - this.#failedAtMs < this.#retryAfterMs) return this.valid;
    return this.renew();
  }

  /** Starts a renewal attempt unless one is in flight; resolves to whether the lease holds after it. */
  renew(): Promise<boolean> {
    if (this.#renewal) return this.#renewal;
    this.#renewals++;
    const attempt = (async () => {
      try {
        await this.#o.renew();
      } catch {
        // A failed attempt shows as a lease still lapsed.
      }
      const held = this.valid;
      this.#failedAtMs = held ? null : this.#now();
      return held;
    })();
    this.#renewal = attempt.finally(() => {
      this.#renewal = undefined;
    });
    return this.#renewal;
  }

  #observe(): void {
    const c = this.#o.confirmation();
    if (c?.tailLive && (this.#liveAtMs === null || c.atMs > this.#liveAtMs)) this.#liveAtMs = c.atMs;
  }
}
