import autocannon from 'autocannon';
import type { BenchProcess } from './procs.ts';

/** One row of `npm run bench`'s table. */
export interface BenchRow {
  readonly benchmark: string;
  readonly subject: string;
  readonly result: string;
  readonly baseline: string;
  readonly target: string;
  readonly met: 'yes' | 'no' | 'n/a';
}

/** What one load run measured: req/s, p99 in ms, the server's CPU µs per request, errors and requests. */
export interface LoadResult {
  readonly rps: number;
  readonly p99Ms: number;
  readonly cpuUsPerReq: number;
  readonly errors: number;
  readonly requests: number;
}

/**
 * Drives `request` (a URL, or autocannon options for a method and body) with
 * autocannon after a 1 s warm-up, for `durationSeconds` over `connections`
 * keep-alive connections, and reads `server`'s CPU time from /proc around
 * the run. Errors count connection errors and non-2xx answers.
 */
export async function load(
  request: string | autocannon.Options,
  server: BenchProcess,
  options: { connections: number; durationSeconds: number },
): Promise<LoadResult> {
  const base: autocannon.Options = typeof request === 'string' ? { url: request } : request;
  await autocannon({ ...base, connections: options.connections, duration: 1 });
  const cpuBefore = server.cpuSeconds();
  const result = await autocannon({ ...base, connections: options.connections, duration: options.durationSeconds });
  const cpu = server.cpuSeconds() - cpuBefore;
  const requests = result.requests.total;
  return {
    rps: result.requests.average,
    p99Ms: result.latency.p99,
    cpuUsPerReq: requests > 0 ? (cpu / requests) * 1e6 : Number.NaN,
    errors: result.errors + result.non2xx,
    requests,
  };
}

/** A number with `digits` decimals, for table cells. */
export const fmt = (n: number, digits = 0): string => n.toFixed(digits);
