/**
 * `npm run bench`: every benchmark, each beside a baseline measured in the
 * same run, printed as a table. Options: `--duration S` (load seconds per
 * measurement, default 5), `--connections N` (default 32), `--only NAME` (one
 * suite), `--sections abcd` (which of the edge measurements; `n`, `p` for the runtimes suite),
 * `--trace-limit N` (bench (s) of the perf suite replays only the trace's first N requests),
 * `--cpu-prof DIR` (the purge-log suite runs its origins and edges under `node --cpu-prof` into DIR
 * and prints where their CPU went).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedis } from '../scripts/services/redis.ts';
import { compressionBenchmarks } from './compression.ts';
import { edgeBenchmarks } from './edge-bench.ts';
import { evictionBenchmarks } from './eviction.ts';
import { grpcBenchmarks } from './grpc-bench.ts';
import { hubBenchmarks } from './hub.ts';
import type { BenchRow } from './load.ts';
import { lockBenchmarks } from './locks.ts';
import { perfBenchmarks } from './perf.ts';
import { purgeKafkaBenchmarks } from './purge-kafka.ts';
import { purgeLogBenchmarks } from './purge-log.ts';
import { redisClusterBenchmarks } from './redis-cluster.ts';
import { regionBenchmarks } from './regions.ts';
import { runtimeBenchmarks } from './runtimes-bench.ts';
import { stampedeBenchmarks } from './stampede.ts';
import { table } from './trace.ts';
import { upstashBenchmarks } from './upstash.ts';
import { warmBenchmarks } from './warm.ts';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    only: { type: 'string' },
    sections: { type: 'string' },
    'cpu-prof': { type: 'string' },
    'trace-limit': { type: 'string' },
    /** (l): milliseconds between one edge's answer and its next GET while waiting for a purge (0 = back to back). */
    'poll-ms': { type: 'string', default: '1' },
    /** (l): sequential writes measured. */
    writes: { type: 'string', default: '1000' },
    /** (l)/(m): extra settings for the rig's origins, `NAME=value,NAME=value`. */
    'origin-env': { type: 'string' },
  },
});
const options = {
  durationSeconds: Number(args.duration),
  connections: Number(args.connections),
  sections: args.sections,
  ...(args['trace-limit'] ? { traceLimit: Number(args['trace-limit']) } : {}),
};

/** Runs `run` with a throwaway Redis (Debian's redis-server) and stops it afterwards. */
async function withRedis<T>(run: (redisUrl: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-'));
  const redis = await startRedis({ dir });
  try {
    return await run(redis.url);
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const suites: Record<string, () => Promise<BenchRow[]>> = {
  edge: () => edgeBenchmarks(options),
  runtimes: () => runtimeBenchmarks(options),
  'redis-cluster': () => redisClusterBenchmarks(options),
  grpc: () => grpcBenchmarks(options),
  kafka: () => withRedis((redisUrl) => purgeKafkaBenchmarks({ redisUrl })),
  'purge-log': () =>
    withRedis((redisUrl) =>
      purgeLogBenchmarks({ redisUrl, ...(args['cpu-prof'] ? { profileDir: args['cpu-prof'] } : {}) }),
    ),
  eviction: () => evictionBenchmarks(),
  compression: () => compressionBenchmarks(),
  locks: () => withRedis((redisUrl) => lockBenchmarks({ redisUrl, durationSeconds: options.durationSeconds })),
  upstash: () => upstashBenchmarks(options),
  hub: () => withRedis((redisUrl) => hubBenchmarks({ redisUrl, durationSeconds: options.durationSeconds })),
  stampede: () => withRedis((redisUrl) => stampedeBenchmarks({ redisUrl })),
  perf: () => perfBenchmarks(options),
  regions: () =>
    regionBenchmarks({
      ...options,
      pollMs: Number(args['poll-ms']),
      writes: Number(args.writes),
      originEnv: Object.fromEntries(
        (args['origin-env'] ?? '')
          .split(',')
          .filter(Boolean)
          .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
      ),
    }),
  warm: () => withRedis((redisUrl) => warmBenchmarks({ redisUrl })),
};

process.stdout.write(
  `Strata benchmarks — ${new Date().toISOString()}\nmachine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; load generator (autocannon) shares the cores\n\n`,
);
const rows: BenchRow[] = [];
for (const [name, run] of Object.entries(suites)) {
  if (args.only && args.only !== name) continue;
  process.stderr.write(`running ${name} …\n`);
  rows.push(...(await run()));
}
process.stdout.write(
  `${table(
    ['benchmark', 'measured', 'same-run baseline', 'result', 'target', 'met'],
    rows.map((r) => [r.benchmark, r.subject, r.baseline, r.result, r.target, r.met]),
  )}\n`,
);
