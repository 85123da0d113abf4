/**
 * Bench (s): the real trace, full, through Strata as shipped (`origin/main.ts`
 * on embedded defaults — the in-memory store — and the Node edge in front of
 * it, authentication on) beside a bare pair on the same requests: a
 * `node:http` reverse proxy (`bench/bare-proxy.ts`) in front of a bare
 * in-memory store (`bench/bare-store.ts`).
 *
 * Method: both servers of a pair pinned to core 0; the replay
 * (`scripts/replay.ts`, concurrency 16, cache-aside: a read that misses is
 * filled with a write of the trace's size) pinned to core 1. CPU of the two
 * server processes from /proc around the replay, divided by the number of
 * trace requests (fills included in the CPU, not in the count). Throughput is
 * trace requests per second of the replay's wall time, as the replay prints it.
 */
import { spawn } from 'node:child_process';
import { type BenchRow, fmt } from './load.ts';
import { cpuSecondsOf, pinnedServers } from './pinned.ts';
import { startProcess } from './procs.ts';

/** What one replay measured. */
interface TraceRun {
  readonly requests: number;
  readonly rps: number;
  readonly errors: number;
  /** Server CPU µs per trace request (both processes of the pair). */
  readonly cpuUsPerReq: number;
  readonly hitRatio: string;
  /** The replay's first error message, when there were errors. */
  readonly firstError?: string;
}

async function replay(
  url: string,
  token: string,
  pids: readonly number[],
  trace: { path?: string; limit?: number },
): Promise<TraceRun> {
  const cpu = () => pids.reduce((s, pid) => s + cpuSecondsOf(pid), 0);
  const args = [
    '-c',
    '1',
    process.execPath,
    'scripts/replay.ts',
    '--edge',
    url,
    '--token',
    token,
    '--concurrency',
    '16',
  ];
  if (trace.path) args.push('--trace', trace.path);
  if (trace.limit) args.push('--limit', String(trace.limit));
  const before = cpu();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('taskset', args, { cwd: `${import.meta.dirname}/..`, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => {
      text += c.toString();
    });
    child.once('error', reject);
    // Exit code 1 means some requests failed: the row reports the count.
    child.once('exit', (code) =>
      code === 0 || code === 1 ? resolve(text) : reject(new Error(`replay exited ${code}`)),
    );
  });
  const used = cpu() - before;
  const field = (name: string) => new RegExp(`^${name}\\s+(.+)$`, 'm').exec(out)?.[1]?.trim() ?? '';
  const requests = Number(field('requests'));
  return {
    requests,
    rps: Number(field('throughput \\(req/s\\)')),
    errors: Number(field('errors')),
    cpuUsPerReq: requests > 0 ? (used / requests) * 1e6 : Number.NaN,
    hitRatio: field('overall hit ratio \\(of reads\\)'),
    firstError: /^first errors:\n\s+(.+)$/m.exec(out)?.[1],
  };
}

/**
 * Bench (s) as one row. `secret` is the servers' `AUTH_JWT_SECRET`, `token`
 * one valid token for the edge's origin calls and the replay; `trace` another
 * trace CSV (default: the provided trace); `limit` replays only its first
 * requests (default: all of them — the figure's definition).
 */
export async function traceBenchmark(options: {
  secret: string;
  token: string;
  trace?: string;
  limit?: number;
}): Promise<BenchRow> {
  const trace = { path: options.trace, limit: options.limit };
  const { started, stopAll } = pinnedServers();
  try {
    const store = await started(startProcess('bench/bare-store.ts', 'BARE_PORT'));
    const proxy = await started(startProcess('bench/bare-proxy.ts', 'BARE_PORT', { BARE_ORIGIN_URL: store.url }));
    const bare = await replay(proxy.url, options.token, [store.pid, proxy.pid], trace);

    const auth = { AUTH_JWT_SECRET: options.secret };
    const origin = await started(startProcess('origin/main.ts', 'ORIGIN_PORT', auth));
    const edge = await started(
      startProcess('edge/adapters/node/main.ts', 'EDGE_PORT', {
        ...auth,
        ORIGIN_URL: origin.url,
        EDGE_ORIGIN_TOKEN: options.token,
      }),
    );
    const strata = await replay(edge.url, options.token, [origin.pid, edge.pid], trace);
    const cell = (r: TraceRun) =>
      `${fmt(r.cpuUsPerReq, 1)} µs CPU/trace request, ${fmt(r.rps)} req/s, hit ratio ${r.hitRatio}, ${r.errors} errors${r.firstError ? ` (first: ${r.firstError})` : ''}`;
    const ratio = strata.cpuUsPerReq / bare.cpuUsPerReq;
    return {
      benchmark: `(s) real trace, ${options.limit ? 'first' : 'full,'} ${strata.requests} requests, concurrency 16, embedded defaults, auth on: edge + origin CPU, pinned`,
      subject: cell(strata),
      baseline: `bare node:http proxy + bare in-memory store: ${cell(bare)}`,
      result: `${fmt(ratio, 2)}× the bare pair's CPU/request`,
      target: '≤ 150 µs and ≥ 3,000 req/s (stretch ≤ 1.5× the bare pair)',
      met: strata.errors === 0 && strata.cpuUsPerReq <= 150 && strata.rps >= 3000 ? 'yes' : 'no',
    };
  } finally {
    await stopAll();
  }
}
