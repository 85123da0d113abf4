import type { Registry } from 'prom-client';
import { type EdgeReport, type MetricJson, snapshotFromMetrics } from '../../../shared/stats.ts';

/** Path on the origin that takes edge reports (`origin/dashboard/paths.ts`). */
const edgeStatsPath = '/api/v1/edges/stats';

/** A running reporter; `stop()` ends the timer. */
export interface StatsReporter {
  /** Sends one report now (the timer calls this); rejects when the origin does not take it. */
  report(): Promise<void>;
  stop(): void;
}

/**
 * Sends this Node edge's numbers to the origin's dashboard every
 * `intervalMs`: a snapshot of its Prometheus registry (`shared/stats.ts`),
 * POSTed as `{ edge_id, snapshot }`. Push, not scrape, so edges behind NAT
 * need no inbound port. A failed report is dropped; the next one carries the
 * cumulative counters, so nothing is lost but resolution.
 */
export function startStatsReporter(options: {
  registry: Registry;
  originUrl: string;
  edgeId: string;
  intervalMs: number;
  timeoutMs: number;
  onError?: (error: unknown) => void;
  /** The edge's own JWT for the origin (`EDGE_ORIGIN_TOKEN`). */
  token?: string;
}): StatsReporter {
  const url = `${options.originUrl.replace(/\/+$/, '')}${edgeStatsPath}`;
  const report = async () => {
    const body: EdgeReport = {
      edge_id: options.edgeId,
      snapshot: snapshotFromMetrics((await options.registry.getMetricsAsJSON()) as MetricJson[]),
    };
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    await res.body?.cancel();
    if (res.status !== 204) throw new Error(`origin answered ${res.status} to an edge stats report`);
  };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    report()
      .catch((error) => options.onError?.(error))
      .finally(() => {
        busy = false;
      });
  }, options.intervalMs);
  timer.unref();
  return { report, stop: () => clearInterval(timer) };
}
