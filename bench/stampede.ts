import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { restCache } from '../client/get-or-set.ts';
import type { RunningEdge } from '../edge/adapters/node/server.ts';
import { type RunningOrigin, startOrigin } from '../origin/server.ts';
import { originConfigSchema, parseConfig } from '../shared/config.ts';
import { benchEdges } from './edges.ts';
import { type BenchRow, fmt } from './load.ts';

/** The stampede's shape (the test): reads, clients, the data source's latency, the lease lifetime. */
const shape = { reads: 1_000, clients: 50, loaderMs: 200, leaseMs: 5_000 } as const;

/** One stampede: data-source loads, wall time (ms) until every read ended, and reads that failed or got another value. */
interface StampedeRun {
  readonly loads: number;
  readonly wallMs: number;
  readonly failed: number;
  /** The first failure's message, when any read failed. */
  readonly firstFailure?: string;
}

/**
 * Runs `shape.reads` concurrent reads of one missing key by `shape.clients`
 * clients (alternating between the two edges), each read going through
 * `read(client, key, loader)` with a loader that counts its calls and takes
 * `shape.loaderMs`.
 */
async function stampede<C>(
  makeClient: (edge: RunningEdge) => C,
  edges: readonly RunningEdge[],
  read: (client: C, key: string, loader: () => Promise<string>) => Promise<string>,
): Promise<StampedeRun> {
  const key = `stampede-${randomUUID()}`;
  const value = 'loaded-value';
  let loads = 0;
  const loader = async () => {
    loads += 1;
    await new Promise((resolve) => setTimeout(resolve, shape.loaderMs));
    return value;
  };
  const clients = Array.from({ length: shape.clients }, (_, i) => makeClient(edges[i % edges.length]!));
  const started = performance.now();
  const results = await Promise.allSettled(
    Array.from({ length: shape.reads }, (_, i) => read(clients[i % clients.length]!, key, loader)),
  );
  const wallMs = performance.now() - started;
  const failures = results.flatMap((r) =>
    r.status === 'rejected'
      ? [String((r.reason as Error)?.message ?? r.reason)]
      : r.value === value
        ? []
        : ['wrong value'],
  );
  return { loads, wallMs, failed: failures.length, ...(failures[0] ? { firstFailure: failures[0] } : {}) };
}

/**
 * Cache-aside without leases: read; on a miss, load and write (every reader
 * that misses loads). The reader keeps its loaded value when the write
 * fails; `writeFailures` counts those writes by status.
 */
function cacheAside(writeFailures: Map<number, number>) {
  return async (baseUrl: string, key: string, loader: () => Promise<string>): Promise<string> => {
    const url = `${baseUrl}/api/v1/cache/bench/${encodeURIComponent(key)}`;
    const res = await fetch(url);
    if (res.status === 200) return await res.text();
    await res.body?.cancel();
    if (res.status !== 404) throw new Error(`read answered ${res.status}`);
    const value = await loader();
    const put = await fetch(`${url}?ttl=60`, { method: 'PUT', body: value, headers: { 'Content-Type': 'text/plain' } });
    await put.body?.cancel();
    if (put.status !== 200) writeFailures.set(put.status, (writeFailures.get(put.status) ?? 0) + 1);
    return value;
  };
}

const describe = (r: StampedeRun) =>
  `${r.loads} loader call${r.loads === 1 ? '' : 's'}, all ${shape.reads} reads done in ${fmt(r.wallMs, 0)} ms` +
  (r.failed > 0 ? `, ${r.failed} failed (first: ${r.firstFailure})` : ', none failed');

/**
 * **(q)** The stampede: 1,000 concurrent reads of one missing key through two
 * edges by 50 clients, each loading from a counting data source that takes
 * 200 ms. Measured: `getOrSet` with refresh leases (lease 5 s; one caller
 * loads, the others wait with `Prefer: wait`), beside the same stampede in the
 * same run with leases off (plain cache-aside: every reader that misses
 * loads and writes). Origin on Redis. Reported: loader calls and wall time
 * of both; the target is the issue's: exactly one load, no failed read.
 */
export async function stampedeBenchmarks(options: { redisUrl: string }): Promise<BenchRow[]> {
  const quiet = pino({ level: 'silent' });
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const origin: RunningOrigin = await startOrigin(
      parseConfig(originConfigSchema, {
        ORIGIN_PORT: '0',
        LOG_LEVEL: 'silent',
        REDIS_URL: options.redisUrl,
        LEASE_TTL_MS: String(shape.leaseMs),
      }),
      { logger: quiet },
    );
    cleanups.unshift(() => origin.close());
    const edges = await benchEdges(origin.url, 2, quiet, cleanups);
    // Baseline first, then leases, then each once more: drift in the shared machine's speed weighs on both.
    const leased = () =>
      stampede(
        (edge) => restCache({ baseUrl: edge.url, namespace: 'bench' }),
        edges,
        async (client, key, loader) => {
          const got = await client.getOrSet(key, loader, { ttlSeconds: 60, waitSeconds: 5 });
          return new TextDecoder().decode(got.value);
        },
      );
    const bare = async () => {
      const writeFailures = new Map<number, number>();
      const run = await stampede((edge) => edge.url, edges, cacheAside(writeFailures));
      const refused = [...writeFailures].map(([status, n]) => `${n} × ${status}`).join(', ');
      return { ...run, refused };
    };
    // A warm-up stampede, not reported: opens the connections, so the first measured run does not pay for them.
    await bare();
    const runs = { bare: [await bare()], leased: [await leased(), await leased()] };
    runs.bare.push(await bare());
    return runs.leased.map((lease, i) => {
      const baseline = runs.bare[i]!;
      return {
        benchmark: `(q) stampede: ${shape.reads} reads of one missing key, 2 edges, ${shape.clients} clients, ${shape.loaderMs} ms loader (run ${i + 1} of 2)`,
        subject: `getOrSet with refresh leases (lease ${shape.leaseMs / 1000} s): ${describe(lease)}`,
        baseline:
          `leases off, cache-aside (every reader that misses loads): ${describe(baseline)}` +
          (baseline.refused ? `; writes refused: ${baseline.refused}` : ''),
        result: `${lease.loads} vs ${baseline.loads} loads; ${fmt(lease.wallMs, 0)} vs ${fmt(baseline.wallMs, 0)} ms`,
        target: 'exactly 1 load, no failed read',
        met: lease.loads === 1 && lease.failed === 0 ? 'yes' : 'no',
      };
    });
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}
