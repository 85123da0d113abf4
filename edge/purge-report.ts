import { type PurgeAppliedReport, purgeAppliedPath } from '../shared/purge-report.ts';
import type { PurgePosition } from '../shared/schemas.ts';

export interface PurgeAppliedReporterOptions {
  /** Origin base URL (the one the edge follows the purge log from). */
  readonly originUrl: string;
  /**
   * This edge's id in the reports (`EDGE_ID`, or a default the runtime
   * adapter gives); a promise while the adapter does not know it yet (the
   * Node edge's `<host>:<port>` before it listens): reports wait for it, and
   * are dropped (`onError`) if it rejects.
   */
  readonly edgeId: string | Promise<string>;
  /** Milliseconds before one report is given up. */
  readonly timeoutMs: number;
  /** Extra request headers (credentials). */
  readonly headers?: Record<string, string> | undefined;
  /** A report the origin did not take (dropped; the next report carries a later position). */
  readonly onError?: (error: unknown) => void;
  readonly fetch?: typeof fetch;
}

/**
 * Reports the position this edge has applied to the origin
 * (`POST /api/v1/purge/applied`, `shared/purge-report.ts`), so the origin's
 * staleness canary can time a write until every edge applied its purge.
 * At most one report is in flight; positions handed in meanwhile collapse to
 * the latest, which is sent when the one in flight ends. Never throws.
 */
export function purgeAppliedReporter(options: PurgeAppliedReporterOptions): (position: PurgePosition) => void {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const url = `${options.originUrl.replace(/\/+$/, '')}${purgeAppliedPath}`;
  let inFlight = false;
  let next: PurgePosition | null = null;
  const send = async (position: PurgePosition) => {
    const body: PurgeAppliedReport = { edge_id: await options.edgeId, position };
    const res = await doFetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...options.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    await res.body?.cancel();
    if (res.status !== 204) throw new Error(`origin answered HTTP ${res.status} to an applied-position report`);
  };
  const drain = async () => {
    inFlight = true;
    while (next !== null) {
      const position = next;
      next = null;
      await send(position).catch((error) => options.onError?.(error));
    }
    inFlight = false;
  };
  return (position) => {
    next = position;
    if (!inFlight) void drain();
  };
}
