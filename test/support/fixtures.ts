import type { OriginRead } from '../../edge/core/edge-cache.ts';

/** An origin read as the edge's loader returns it. */
export function originRead(value: string, version: number, over: Partial<OriginRead> = {}): OriginRead {
  return {
    value: new TextEncoder().encode(value),
    contentType: 'text/plain',
    version,
    createdAtMs: 0,
    expiresAtMs: Number.MAX_SAFE_INTEGER,
    tags: [],
    tier: 'memory',
    degraded: false,
    status: 'HIT',
    ...over,
  };
}

/** A promise with its resolve function exposed, to order events by hand. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
