/**
 * Request coalescing: concurrent callers asking for the same key share one
 * in-flight promise, so a burst of misses sends one request to the origin
 * (the "single flight" of Go's groupcache; Varnish's request coalescing).
 */
export class Coalescer<T> {
  readonly #inflight = new Map<string, Promise<T>>();

  /** Calls in flight now. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /**
   * Runs `load` for `key` unless a run is already in flight, in which case
   * the caller joins it. Rejections reach every joined caller; the next call
   * after settlement starts afresh.
   * @returns the shared promise and whether this caller started it.
   */
  run(key: string, load: () => Promise<T>): { promise: Promise<T>; leader: boolean } {
    const existing = this.#inflight.get(key);
    if (existing) return { promise: existing, leader: false };
    const promise = load().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, promise);
    return { promise, leader: true };
  }
}
