/** Thrown by {@link connectionReady} when the client is known to be disconnected. */
export class ConnectionDownError extends Error {
  constructor(status: string) {
    super(`redis connection ${status}`);
    this.name = 'ConnectionDownError';
  }
}

/**
 * The promise a `ready` gate answers while the connection is usable: one
 * settled promise for every call, so a caller can tell "ready now" by
 * identity and call at once instead of awaiting it (`resilient.ts`).
 */
export const readyNow: Promise<void> = Promise.resolve();

/**
 * A `ready` gate for an ioredis client (standalone or Cluster).
 *
 * - `ready`: {@link readyNow}, already resolved.
 * - first connection (`wait`, `connecting`, `connect`): waits for the
 *   `ready` event; rejects when `signal` aborts (the per-call timeout).
 * - lost (`reconnecting`, `close`, `end`): rejects at once with
 *   {@link ConnectionDownError}, so during an outage a request is answered
 *   from the local tier without waiting for a timeout, even while the
 *   60 s sampling window still holds too many earlier successes for the
 *   breaker to open.
 *
 * Either way the command is never handed to ioredis while it is not ready:
 * ioredis queues such commands and sends them on reconnect, so a write the
 * breaker already gave up on (and the local tier accepted) would land late,
 * stamped newer than changes made after it.
 */
export function connectionReady(client: {
  readonly status: string;
  once(event: 'ready', listener: () => void): unknown;
  off(event: 'ready', listener: () => void): unknown;
}): (signal: AbortSignal) => Promise<void> {
  return (signal) => {
    if (client.status === 'ready') return readyNow;
    if (!['wait', 'connecting', 'connect'].includes(client.status)) {
      return Promise.reject(new ConnectionDownError(client.status));
    }
    return new Promise<void>((resolve, reject) => {
      const onReady = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        client.off('ready', onReady);
        reject(new ConnectionDownError(client.status));
      };
      if (signal.aborted) return onAbort();
      client.once('ready', onReady);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  };
}
