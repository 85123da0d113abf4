import type { Store } from './store.ts';

/** Thrown when fewer replicas than asked confirmed a write within the `WAIT` timeout. */
export class ReplicaWaitError extends Error {
  /** Replicas that confirmed. */
  readonly acknowledged: number;
  constructor(acknowledged: number, wanted: number, timeoutMs: number) {
    super(`only ${acknowledged} of ${wanted} replicas confirmed the write within ${timeoutMs} ms (WAIT)`);
    this.name = 'ReplicaWaitError';
    this.acknowledged = acknowledged;
  }
}

/** The one command {@link waitForReplicas} sends: ioredis's `wait`. */
export interface WaitClient {
  wait(numReplicas: number, timeoutMs: number): Promise<number>;
}

/** Options of {@link waitForReplicas}. */
export interface ReplicaWaitOptions {
  /** Replicas that must confirm each write (`REDIS_WAIT_REPLICAS`), at least 1. */
  readonly replicas: number;
  /** Milliseconds `WAIT` blocks at most (`REDIS_WAIT_TIMEOUT_MS`). */
  readonly timeoutMs: number;
}

/**
 * A store facade that sends `WAIT replicas timeout` after every write,
 * delete and purge (https://redis.io/docs/latest/commands/wait/) and
 * rejects with {@link ReplicaWaitError} when fewer replicas confirmed in
 * time. `WAIT` covers every earlier write of the connection, and the driver
 * holds one connection to the master, so it covers the write just made.
 *
 * What it buys: a write acknowledged here is held by `replicas` replicas
 * when the answer leaves, so a failover that promotes one of them keeps it.
 * What it does not: `WAIT` is not consensus. Sentinel may promote a replica
 * that did not confirm (when `replicas` is below the replica count), and a
 * rejected write may still be on the master and reach replicas later.
 * Measured figures: docs/redis-sentinel.md.
 *
 * For standalone and Sentinel masters; a Cluster client would have to send
 * `WAIT` to each key's node.
 */
export function waitForReplicas<S extends Store>(store: S, client: WaitClient, options: ReplicaWaitOptions): S {
  const confirm = async <T>(result: T): Promise<T> => {
    const acknowledged = await client.wait(options.replicas, options.timeoutMs);
    if (acknowledged < options.replicas) throw new ReplicaWaitError(acknowledged, options.replicas, options.timeoutMs);
    return result;
  };
  return Object.assign(Object.create(store) as S, {
    set: async (...args: Parameters<Store['set']>) => confirm(await store.set(...args)),
    setMany: async (...args: Parameters<Store['setMany']>) => confirm(await store.setMany(...args)),
    delete: async (...args: Parameters<Store['delete']>) => confirm(await store.delete(...args)),
    purge: async (...args: Parameters<Store['purge']>) => confirm(await store.purge(...args)),
  });
}
