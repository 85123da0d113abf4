import {
  type AcquireOutcome,
  type LockGrant,
  type LockHolder,
  type LockStore,
  lockHistoryRetentionMs,
  type ReleaseOutcome,
} from './lock-store.ts';

/** Unix microseconds from a monotonic source anchored at process start (never goes back). */
export function monotonicNowUs(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

interface History {
  /** Last token granted. */
  last: number;
  /** Whether that grant was released (false: held, or lapsed). */
  released: boolean;
  /** Unix ms of the grant's lease end (or its release); the record is forgotten {@link lockHistoryRetentionMs} later. */
  until: number;
}

/** Acquisitions between two sweeps of lapsed holders and old history. */
const sweepEvery = 1_024;

/**
 * The in-process {@link LockStore} for the embedded memory store: the same
 * semantics as the Redis scripts, with this process's clock as the store
 * clock. Every method runs synchronously inside one turn of the event loop,
 * so each is atomic like a Lua script. The per-lock history (last token) is
 * forgotten {@link lockHistoryRetentionMs} after the last lease ended, as on
 * Redis (the store clock is monotonic, so a later grant's token, at least
 * the clock, is still larger). Lapsed holders
 * and old history are swept every {@link sweepEvery} acquisitions, so
 * memory follows the locks in use, not every name ever locked.
 *
 * @param nowUs the store clock, Unix microseconds; default {@link monotonicNowUs}.
 */
export function memoryLockStore(nowUs: () => number = monotonicNowUs): LockStore {
  const holders = new Map<string, LockHolder>();
  const history = new Map<string, History>();
  const id = (namespace: string, name: string) => `${namespace}\u0000${name}`;
  let acquisitions = 0;
  const sweep = (nowMs: number) => {
    for (const [k, holder] of holders) if (holder.expiresAtMs <= nowMs) holders.delete(k);
    for (const [k, past] of history)
      if (past.until + lockHistoryRetentionMs <= nowMs && !holders.has(k)) history.delete(k);
  };

  function current(k: string, nowMs: number): LockHolder | null {
    const holder = holders.get(k);
    if (!holder) return null;
    if (holder.expiresAtMs > nowMs) return holder;
    holders.delete(k);
    return null;
  }

  return {
    async acquire(namespace, name, ttlMs): Promise<AcquireOutcome> {
      const k = id(namespace, name);
      const atUs = nowUs();
      const nowMs = Math.floor(atUs / 1000);
      if (++acquisitions % sweepEvery === 0) sweep(nowMs);
      const holder = current(k, nowMs);
      if (holder) return { acquired: false, holder };
      const past = history.get(k) ?? { last: 0, released: true, until: 0 };
      const token = Math.max(past.last + 1, atUs);
      const grant: LockGrant = { token, expiresAtMs: nowMs + ttlMs, atUs };
      holders.set(k, { token, expiresAtMs: grant.expiresAtMs });
      history.set(k, { last: token, released: false, until: grant.expiresAtMs });
      return { acquired: true, grant, previousExpired: past.last > 0 && !past.released };
    },
    async renew(namespace, name, token, ttlMs) {
      const k = id(namespace, name);
      const atUs = nowUs();
      const nowMs = Math.floor(atUs / 1000);
      const holder = current(k, nowMs);
      if (!holder || holder.token !== token) return null;
      const expiresAtMs = nowMs + ttlMs;
      holders.set(k, { token, expiresAtMs });
      const past = history.get(k);
      if (past) past.until = expiresAtMs;
      return { token, expiresAtMs, atUs };
    },
    async release(namespace, name, token): Promise<ReleaseOutcome> {
      const k = id(namespace, name);
      const atUs = nowUs();
      const holder = current(k, Math.floor(atUs / 1000));
      if (!holder || holder.token !== token) return { released: false, atUs };
      holders.delete(k);
      history.set(k, { last: token, released: true, until: Math.floor(atUs / 1000) });
      return { released: true, atUs };
    },
    async inspect(namespace, name) {
      return current(id(namespace, name), Math.floor(nowUs() / 1000));
    },
  };
}
