/**
 * The metrics seam of the runtime-free apps. The Node entry points implement
 * it with prom-client; on Workers a no-op is used (no `/metrics` scrape there).
 */
export interface RequestMetrics {
  /**
   * Records one finished request.
   * @param operation e.g. `get`, `set`, `delete`, `batch_get`, `purge`.
   * @param tier the tier that answered (`edge`, `redis`, `memory`, `origin-local`) or `none`.
   * @param result `hit`, `miss`, `stale`, `ok` or `error`.
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

/**
 * Memoises `make(labels…)` per label combination, so the hot path does one
 * Map lookup instead of hashing a label object on every observation.
 */
export function memoByLabels<T>(make: (...labels: string[]) => T): (...labels: string[]) => T {
  const children = new Map<string, T>();
  return (...labels) => {
    const id = labels.join('\u0000');
    let child = children.get(id);
    if (child === undefined) {
      child = make(...labels);
      children.set(id, child);
    }
    return child;
  };
}
