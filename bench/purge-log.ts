import type { BenchRow } from './load.ts';
import { fmt } from './load.ts';
import { type BenchProcess, startProcess } from './procs.ts';
import { percentile } from './trace.ts';

/** Milliseconds from a PUT at edge `writer` until edge `reader` serves the new value, per write. */
async function propagation(writer: BenchProcess, reader: BenchProcess, key: string, writes: number): Promise<number[]> {
  await (await fetch(`${writer.url}/api/v1/cache/bench/${key}?ttl=3600`, { method: 'PUT', body: 'v0' })).arrayBuffer();
  await (await fetch(`${reader.url}/api/v1/cache/bench/${key}`)).text();
  const ms: number[] = [];
  for (let i = 1; i <= writes; i++) {
    const t0 = performance.now();
    await (
      await fetch(`${writer.url}/api/v1/cache/bench/${key}?ttl=3600`, { method: 'PUT', body: `v${i}` })
    ).arrayBuffer();
    for (;;) {
      const body = await (await fetch(`${reader.url}/api/v1/cache/bench/${key}`)).text();
      if (body === `v${i}`) break;
    }
    ms.push(performance.now() - t0);
  }
  return ms;
}

/** Milliseconds of `writes` sequential PUTs straight at an origin. */
async function writeLatency(origin: BenchProcess, writes: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < writes; i++) {
    const t0 = performance.now();
    await (await fetch(`${origin.url}/api/v1/cache/bench/w?ttl=60`, { method: 'PUT', body: `v${i}` })).arrayBuffer();
    ms.push(performance.now() - t0);
  }
  return ms;
}

const summary = (ms: number[]) => `p50 ${fmt(percentile(ms, 50), 2)} ms, p99 ${fmt(percentile(ms, 99), 2)} ms`;

/**
 * (k) Purge propagation across origin replicas: two origins on one Redis
 * share the region's purge log; a PUT at an edge of replica 1 until an edge
 * of replica 2 serves it, over 1,000 writes, beside the same measurement
 * with both edges on replica 1 in the same run (the (c) path, on Redis).
 * Also the write latency the log adds (the change's intent and its purge): PUT at an origin with the log
 * (`PURGE_BUS=auto`) beside one without it (`PURGE_BUS=none`), same Redis.
 * The Redis here has no replica, so `WAIT` is not exercised.
 */
export async function purgeLogBenchmarks(options: { redisUrl: string }): Promise<BenchRow[]> {
  const writes = 1000;
  const env = { REDIS_URL: options.redisUrl, PURGE_LOG_KEY: '{bench:purge-log}' };
  const one = await startProcess('origin/main.ts', 'ORIGIN_PORT', env);
  const two = await startProcess('origin/main.ts', 'ORIGIN_PORT', env);
  const plain = await startProcess('origin/main.ts', 'ORIGIN_PORT', { REDIS_URL: options.redisUrl, PURGE_BUS: 'none' });
  const edge = (origin: BenchProcess) =>
    startProcess('edge/adapters/node/main.ts', 'EDGE_PORT', { ORIGIN_URL: origin.url, EDGE_MAX_TTL_SECONDS: '3600' });
  const a = await edge(one);
  const b = await edge(two);
  const sameReplica = await edge(one);
  try {
    const across = await propagation(a, b, 'across', writes);
    const within = await propagation(a, sameReplica, 'within', writes);
    const withLog = await writeLatency(one, writes);
    const withoutLog = await writeLatency(plain, writes);
    const p99 = percentile(across, 99);
    const baseP99 = percentile(within, 99);
    return [
      {
        benchmark:
          '(k) purge propagation across replicas: PUT at an edge of replica 1 → an edge of replica 2 serves it (1,000 writes)',
        subject: `${summary(across)}, max ${fmt(Math.max(...across), 2)} ms`,
        baseline: `both edges on replica 1 (the (c) path on Redis): ${summary(within)}`,
        result: `p99 ${fmt(p99, 2)} ms vs ${fmt(baseP99, 2)} ms`,
        target: 'p99 ≤ same-run baseline p99 + 5 ms',
        met: p99 <= baseP99 + 5 ? 'yes' : 'no',
      } as BenchRow,
      {
        benchmark: '(k) write latency added by the purge log (PUT at the origin, 1,000 writes, no WAIT)',
        subject: `with the Redis log: ${summary(withLog)}`,
        baseline: `PURGE_BUS=none, same Redis: ${summary(withoutLog)}`,
        result: `+${fmt(percentile(withLog, 50) - percentile(withoutLog, 50), 2)} ms at p50`,
        target: 'none',
        met: 'n/a',
      } as BenchRow,
    ];
  } finally {
    await Promise.all([a.stop(), b.stop(), sameReplica.stop()]);
    await Promise.all([one.stop(), two.stop(), plain.stop()]);
  }
}
