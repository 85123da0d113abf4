/** Where edges POST their snapshots (`shared/stats.ts` `edgeReportSchema`). */
export const edgeStatsPath = '/api/v1/edges/stats';
/** The dashboard's data. */
export const statsPath = '/api/v1/stats';

/** Dashboard plumbing polled every few seconds: not worth a span each (see `traceServerRequests`). */
export function isDashboardPath(path: string): boolean {
  return path === statsPath || path === edgeStatsPath;
}
