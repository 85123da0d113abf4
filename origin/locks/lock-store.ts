/**
 * The lock seam: one interface, one small file per implementation (memory,
 * Redis standalone and Cluster in `redis.ts`), one conformance suite in
 * `test/conformance/locks.ts` that every implementation must pass.
 *
 * A lock is named by `(namespace, name)`. Each grant carries a **fencing
 * token** (Kleppmann, "How to do distributed locking", 2016): an integer that
 * grows with every grant of that lock, computed by the store as
 * `max(last token + 1, store clock in µs)`, so that a counter lost in a
 * failover still cannot hand out a token seen before (as long as the new
 * primary's clock is not behind the old one's by more than the gap).
 */

/** A grant of a lock. */
export interface LockGrant {
  /** Fencing token: strictly greater than every earlier grant's token of this lock. */
  readonly token: number;
  /** When the grant lapses unless renewed, Unix milliseconds (store clock). */
  readonly expiresAtMs: number;
  /** The store's clock when it granted or renewed, Unix microseconds (for ordering proofs in tests). */
  readonly atUs: number;
}

/** The current holder of a lock, as `inspect` and a refused acquire see it. */
export interface LockHolder {
  readonly token: number;
  /** Unix milliseconds (store clock). */
  readonly expiresAtMs: number;
}

/** What an acquire attempt found. */
export type AcquireOutcome =
  | {
      readonly acquired: true;
      readonly grant: LockGrant;
      /** True when the previous grant lapsed (its TTL ran out) without a release. */
      readonly previousExpired: boolean;
    }
  | { readonly acquired: false; readonly holder: LockHolder };

/** What a release did. */
export interface ReleaseOutcome {
  /** False when the token is not the current holder's (another grant, or the lock lapsed). */
  readonly released: boolean;
  /** The store's clock at the release, Unix microseconds. */
  readonly atUs: number;
}

export interface LockStore {
  /**
   * Grants the lock for `ttlMs` when nobody holds it; never waits.
   * @param ttlMs lease length, milliseconds (> 0).
   */
  acquire(namespace: string, name: string, ttlMs: number): Promise<AcquireOutcome>;
  /** Extends the holder's lease to `ttlMs` from now; null when `token` does not hold the lock. */
  renew(namespace: string, name: string, token: number, ttlMs: number): Promise<LockGrant | null>;
  /** Releases the lock when `token` holds it. */
  release(namespace: string, name: string, token: number): Promise<ReleaseOutcome>;
  /** The current holder, or null when the lock is free. */
  inspect(namespace: string, name: string): Promise<LockHolder | null>;
}

/**
 * How long a lock's history (its last token, and whether it was released)
 * outlives the last lease, ms: one day. Tokens also grow with the store's
 * clock, so the history only has to outlive a step back of that clock (a
 * failover to a replica whose clock is behind), not the lock name forever.
 */
export const lockHistoryRetentionMs = 86_400_000;
