import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { redisClusterStore } from '../origin/store/redis-cluster.ts';
import type { EntryInput } from '../origin/store/store.ts';
import { startRedisCluster } from '../scripts/services/redis-cluster.ts';
import { type BenchRow, fmt, load } from './load.ts';
import { type BenchProcess, startProcess } from './procs.ts';
import { percentile } from './trace.ts';

/** Options of {@link redisClusterBenchmarks}. */
export interface RedisClusterBenchOptions {
  /** Seconds of load per throughput measurement. */
  readonly durationSeconds: number;
  /** Concurrent connections, for autocannon and redis-benchmark alike. */
  readonly connections: number;
}

const valueBytes = 1024;
/** Request rate of the paced degraded-mode run, per second. */
const degradedRatePerSecond = 500;

/** Runs `redis-benchmark -t get --cluster` and returns its GET requests per second (CSV output). */
async function redisBenchmarkGet(port: number, connections: number, requests: number): Promise<number> {
  const args = [
    '-p',
    String(port),
    '--cluster',
    '-t',
    'get',
    '-c',
    String(connections),
    '-n',
    String(requests),
    '--csv',
  ];
  const out = await new Promise<string>((resolve, reject) => {
    execFile('redis-benchmark', args, { timeout: 120_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`redis-benchmark failed: ${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
  const line = out.split('\n').find((l) => l.startsWith('"GET"'));
  if (!line) throw new Error(`redis-benchmark printed no GET line:\n${out}`);
  return Number(line.split(',')[1]!.replaceAll('"', ''));
}

/**
 * Redis Cluster benchmarks, each beside a baseline measured in the same run
 * on the same 6-node cluster (started here, stopped at the end):
 *
 * - **(e)** origin `GET` answered from Redis Cluster vs raw
 *   `redis-benchmark -t get --cluster` at the same concurrency; target ≥ 0.5.
 * - **(f)** batch get of 100 keys spread over all slots: round trips and
 *   latency vs 100 single GETs in sequence, in the driver and over HTTP.
 * - **(g)** degraded mode: p50/p99 of local-tier reads with every Redis node
 *   stopped and the breaker open; target p99 < 50 ms.
 *
 * The origin runs as its own process (`origin/main.ts`); autocannon and
 * redis-benchmark share the machine's cores with it.
 *
 * @returns one {@link BenchRow} per benchmark, for `bench/run.ts`.
 * @throws when redis-server/redis-benchmark are missing or the cluster does not form.
 */
export async function redisClusterBenchmarks(options: RedisClusterBenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-cluster-'));
  const cluster = await startRedisCluster({ dir });
  const nodes = cluster.env.REDIS_CLUSTER_NODES!;
  const origin = await startProcess('origin/main.ts', 'ORIGIN_PORT', {
    REDIS_CLUSTER_NODES: nodes,
    BREAKER_HALF_OPEN_AFTER_MS: '60000',
  });
  const driver = redisClusterStore({ nodes: nodes.split(',') });
  let degradedOrigin: BenchProcess | undefined;
  try {
    // (e) origin GET on a Redis hit vs raw redis-benchmark GET.
    const hotUrl = `${origin.url}/api/v1/cache/bench/hot`;
    await (await fetch(`${hotUrl}?ttl=3600`, { method: 'PUT', body: new Uint8Array(valueBytes) })).arrayBuffer();
    const hit = await load(hotUrl, origin, options);
    const rawRps = await redisBenchmarkGet(
      cluster.ports[0]!,
      options.connections,
      Math.max(100_000, Math.round(hit.rps * options.durationSeconds * 4)),
    );
    const ratio = hit.rps / rawRps;
    rows.push({
      benchmark: '(e) origin GET, Redis Cluster hit, 1 KiB value',
      subject: `${fmt(hit.rps)} req/s, p99 ${fmt(hit.p99Ms, 1)} ms, ${fmt(hit.cpuUsPerReq, 1)} µs CPU/req, ${hit.errors} errors`,
      baseline: `redis-benchmark -t get --cluster -c ${options.connections}: ${fmt(rawRps)} req/s`,
      result: `ratio ${fmt(ratio, 2)}`,
      target: '≥ 0.5',
      met: ratio >= 0.5 ? 'yes' : 'no',
    });

    // (f) batch of 100 keys over all slots vs 100 single GETs, in the driver and over HTTP.
    const keys = Array.from({ length: 100 }, (_, i) => `spread-${i}`);
    const entries = new Map<string, EntryInput>(
      keys.map((k) => [
        k,
        { value: new Uint8Array(valueBytes), contentType: 'application/octet-stream', ttlMs: 3_600_000, tags: [] },
      ]),
    );
    await driver.setMany('bench', entries);
    const rounds = 200;
    const batchMs: number[] = [];
    const singleMs: number[] = [];
    let batchTrips = 0;
    let singleTrips = 0;
    for (let r = 0; r < rounds; r++) {
      const t0 = driver.stats.roundTrips;
      const s0 = performance.now();
      await driver.getMany('bench', keys);
      batchMs.push(performance.now() - s0);
      batchTrips += driver.stats.roundTrips - t0;
      const t1 = driver.stats.roundTrips;
      const s1 = performance.now();
      for (const k of keys) await driver.get('bench', k);
      singleMs.push(performance.now() - s1);
      singleTrips += driver.stats.roundTrips - t1;
    }
    const httpBatchMs: number[] = [];
    const httpSingleMs: number[] = [];
    for (let r = 0; r < 50; r++) {
      const s0 = performance.now();
      const res = await fetch(`${origin.url}/api/v1/cache/bench/batch/get`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ keys }),
      });
      await res.arrayBuffer();
      httpBatchMs.push(performance.now() - s0);
      const s1 = performance.now();
      for (const k of keys) await (await fetch(`${origin.url}/api/v1/cache/bench/${k}`)).arrayBuffer();
      httpSingleMs.push(performance.now() - s1);
    }
    const speedup = percentile(singleMs, 50) / percentile(batchMs, 50);
    rows.push({
      benchmark: '(f) batch get of 100 keys over all slots',
      subject:
        `driver: ${fmt(batchTrips / rounds, 1)} round trips, p50 ${fmt(percentile(batchMs, 50), 2)} ms, p99 ${fmt(percentile(batchMs, 99), 2)} ms; ` +
        `HTTP batch/get: p50 ${fmt(percentile(httpBatchMs, 50), 2)} ms`,
      baseline:
        `100 single GETs in sequence: ${fmt(singleTrips / rounds, 0)} round trips, p50 ${fmt(percentile(singleMs, 50), 2)} ms; ` +
        `HTTP: p50 ${fmt(percentile(httpSingleMs, 50), 2)} ms`,
      result: `${fmt(speedup, 1)}× faster (driver p50)`,
      target: 'one round trip per master (3)',
      met: batchTrips / rounds <= 3 ? 'yes' : 'no',
    });

    // (g) degraded mode: every node stopped; reads come from the origin's local tier. A fresh origin,
    // because the breaker's 60 s window still holds the successes of (e) and (f) in the first one.
    degradedOrigin = await startProcess('origin/main.ts', 'ORIGIN_PORT', {
      REDIS_CLUSTER_NODES: nodes,
      BREAKER_HALF_OPEN_AFTER_MS: '60000',
    });
    const readUrls = keys.slice(0, 10).map((k) => `${degradedOrigin!.url}/api/v1/cache/bench/${k}`);
    for (const url of readUrls) await (await fetch(url)).arrayBuffer(); // clean local copies
    await cluster.stopAll();
    const deadline = Date.now() + 60_000;
    for (;;) {
      await Promise.all(readUrls.map(async (url) => (await fetch(url)).arrayBuffer()));
      const metrics = await (await fetch(`${degradedOrigin.url}/metrics`)).text();
      if (/strata_breaker_state\{state="open"[^}]*\} 1/.test(metrics)) break;
      if (Date.now() > deadline) throw new Error('the breaker did not open within 60 s of stopping the cluster');
    }
    await autocannon({ url: readUrls[0]!, connections: options.connections, duration: 1 });
    // At saturation latency is queueing (connections ÷ throughput); at a fixed moderate rate it is the path itself.
    const cpuBefore = degradedOrigin.cpuSeconds();
    const saturated = await autocannon({
      url: readUrls[0]!,
      connections: options.connections,
      duration: options.durationSeconds,
    });
    const cpuUsPerReq = ((degradedOrigin.cpuSeconds() - cpuBefore) / saturated.requests.total) * 1e6;
    const paced = await autocannon({
      url: readUrls[0]!,
      connections: 8,
      overallRate: degradedRatePerSecond,
      duration: options.durationSeconds,
    });
    const failures = saturated.errors + saturated.non2xx + paced.errors + paced.non2xx;
    const p99 = paced.latency.p99;
    rows.push({
      benchmark: '(g) degraded reads: all Redis nodes down, breaker open, local tier',
      subject:
        `at ${degradedRatePerSecond} req/s: p50 ${fmt(paced.latency.p50, 1)} ms, p99 ${fmt(p99, 1)} ms; ` +
        `saturated (${options.connections} conns): ${fmt(saturated.requests.average)} req/s, p50 ${fmt(saturated.latency.p50, 1)} ms, ` +
        `p99 ${fmt(saturated.latency.p99, 1)} ms, ${fmt(cpuUsPerReq, 1)} µs CPU/req; ${failures} non-2xx/errors`,
      baseline: `healthy Redis hit (e): ${fmt(hit.rps)} req/s, p99 ${fmt(hit.p99Ms, 1)} ms, ${fmt(hit.cpuUsPerReq, 1)} µs CPU/req`,
      result: `p99 ${fmt(p99, 1)} ms at ${degradedRatePerSecond} req/s`,
      target: 'p99 < 50 ms',
      met: p99 < 50 && failures === 0 ? 'yes' : 'no',
    });
  } finally {
    await driver.close();
    await origin.stop();
    await degradedOrigin?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
