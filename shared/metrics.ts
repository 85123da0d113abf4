/**
 * The metrics seam of the runtime-free apps. The Node entry points implement
 * it with prom-client; on Workers a no-op is used (no `/metrics` scrape there).
 */
export interface RequestMetrics {
  /**
   * Records one finished request.
   * @param operation e.g. `get`, `set`, `delete`, `batch_get`, `purge`.
   * @param tier the tier that answered (`edge`, `redis`, `memory`, `origin-local`) or `none`.
   * @param result `hit`, `miss`, `stale`, `ok`, `error` or `refused` (401/403 AUTH_001/AUTH_002).
   * @param seconds duration in seconds.
   */
  request(operation: string, tier: string, result: string, seconds: number): void;
  /** Prometheus text exposition, or null when this runtime has no registry. */
  render(): Promise<string | null>;
  /** Content-Type of `render()`'s output. */
  readonly contentType: string;
}

/** Metrics that record nothing (Workers). */
export const noMetrics: RequestMetrics = {
  request() {},
  async render() {
    return null;
  },
  contentType: 'text/plain',
};
