import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { redisStore } from '../origin/store/redis.ts';
import { waitFor } from '../scripts/lib/proc.ts';
import { type Rig, rigLatencyMs, startRig } from '../scripts/lib/rig.ts';
import { type BenchRow, fmt } from './load.ts';
import { percentile } from './trace.ts';

const text = new TextEncoder();
const summary = (ms: number[]) => `p50 ${fmt(percentile(ms, 50), 1)} ms, p99 ${fmt(percentile(ms, 99), 1)} ms`;
const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;

/** GET at an edge: status, `X-Cache` and body. */
async function edgeGet(
  url: string,
  token: string,
  path: string,
): Promise<{ status: number; cache: string | null; body: string }> {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, cache: res.headers.get('X-Cache'), body: await res.text() };
}

/** Reads at `edge` until it answers `body` from its own tier (`X-Cache: HIT`). */
async function prime(edge: string, token: string, path: string, body: string): Promise<void> {
  let last = '';
  await waitFor(
    `${edge} to hold ${path}`,
    async () => {
      const got = await edgeGet(edge, token, path);
      last = `${got.status} ${got.cache} ${got.body.slice(0, 80)}`;
      return got.cache === 'HIT' && got.body === body;
    },
    10_000,
    1,
  ).catch((error: Error) => {
    throw new Error(`${error.message} (last answer: ${last})`);
  });
}

/**
 * (l) A write acknowledged in region A until every edge of both regions has
 * dropped its copy: per write, the time from the PUT at an origin of A to the
 * last of the four edges answering something other than the value it held
 * (A's edges: the new value; B's: a miss, since values never cross). B's copy
 * is written into B's Redis directly before each write (no purge of its own).
 * The same writes give the in-region figure (A's two edges only) as baseline.
 */
async function crossRegionPurge(rig: Rig, writes: number): Promise<BenchRow> {
  const { token, regions } = rig.state;
  const a = regions.a!;
  const b = regions.b!;
  const storeB = redisStore({ url: b.redis.REDIS_URL });
  const path = '/api/v1/cache/bench-xr/k';
  const put = async (value: string) => {
    const res = await fetch(`${a.origins[0]}${path}?ttl=3600`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}` },
      body: value,
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`PUT in region a answered ${res.status}`);
  };
  const all: number[] = [];
  const inRegion: number[] = [];
  const seedB = (value: string) =>
    storeB.set('bench-xr', 'k', { value: text.encode(value), contentType: 'text/plain', ttlMs: 3_600_000, tags: [] });
  try {
    // The first write's purge must have crossed before B's copy for the first measured write goes in.
    await seedB('b0');
    for (const edge of b.edges) await prime(edge, token, path, 'b0');
    await put('a0');
    for (const edge of b.edges)
      await waitFor(
        'the first purge in region b',
        async () => (await edgeGet(edge, token, path)).body !== 'b0',
        30_000,
        5,
      );
    for (let i = 1; i <= writes; i++) {
      const held = `b${i}`;
      await seedB(held);
      const before = new Map<string, string>([
        ...a.edges.map((e) => [e, `a${i - 1}`] as const),
        ...b.edges.map((e) => [e, held] as const),
      ]);
      for (const [edge, body] of before) await prime(edge, token, path, body);
      const t0 = performance.now();
      await put(`a${i}`);
      const purgedAfter = await Promise.all(
        [...before].map(async ([edge, old]) => {
          for (;;) {
            if ((await edgeGet(edge, token, path)).body !== old) return performance.now() - t0;
          }
        }),
      );
      all.push(Math.max(...purgedAfter));
      inRegion.push(Math.max(...purgedAfter.slice(0, a.edges.length)));
    }
  } finally {
    await storeB.close();
  }
  const rttMs = 2 * rigLatencyMs;
  const p99 = percentile(all, 99);
  return {
    benchmark: `(l) in the rig (${rttMs} ms RTT between regions): PUT in region a → all 4 edges of both regions purged (${writes} writes)`,
    subject: `${summary(all)}, max ${fmt(Math.max(...all), 1)} ms`,
    baseline: `region a's own 2 edges, same writes: ${summary(inRegion)}; published: Cloudflare Instant Purge < 150 ms p50 globally, Fastly ≈ 150 ms`,
    result: `p99 ${fmt(p99, 1)} ms`,
    target: `p99 ≤ RTT + 20 ms = ${rttMs + 20} ms`,
    met: p99 <= rttMs + 20 ? 'yes' : 'no',
  };
}

/** One autocannon run of edge hits; errors count failed connections and non-2xx answers. */
async function hits(
  url: string,
  token: string,
  options: { connections: number; durationSeconds: number },
): Promise<{ rps: number; p99Ms: number; errors: number }> {
  const result = await autocannon({
    url,
    headers: { authorization: `Bearer ${token}` },
    connections: options.connections,
    duration: options.durationSeconds,
  });
  return { rps: result.requests.average, p99Ms: result.latency.p99, errors: result.errors + result.non2xx };
}

/**
 * (m) Region isolation: edge hits in region A (one hot key at an edge of A),
 * three runs with region B healthy, then B's Redis is stopped and three runs
 * more; medians compared. B's origins keep running (their breaker opens,
 * their Kafka consumers retry), sharing the machine with A.
 */
async function regionIsolation(rig: Rig, options: { connections: number; durationSeconds: number }): Promise<BenchRow> {
  const { token, regions } = rig.state;
  const a = regions.a!;
  const b = regions.b!;
  const path = '/api/v1/cache/bench-iso/hot';
  const res = await fetch(`${a.origins[0]}${path}?ttl=3600`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}` },
    body: 'x'.repeat(512),
  });
  await res.arrayBuffer();
  await prime(a.edges[0]!, token, path, 'x'.repeat(512));
  const url = `${a.edges[0]}${path}`;
  // Warm-up, not counted.
  await hits(url, token, { ...options, durationSeconds: 1 });
  const healthy = [];
  for (let i = 0; i < 3; i++) healthy.push(await hits(url, token, options));
  await rig.redis.b!.stop();
  // B notices: its origins answer /ready 503 once their store is unreachable.
  await waitFor(
    "region b's origins to see their Redis gone",
    async () => (await fetch(`${b.origins[0]}/ready`).catch(() => null))?.status !== 200,
    30_000,
    100,
  );
  const stopped = [];
  for (let i = 0; i < 3; i++) stopped.push(await hits(url, token, options));
  const rpsHealthy = median(healthy.map((r) => r.rps));
  const rpsStopped = median(stopped.map((r) => r.rps));
  const errors = stopped.reduce((n, r) => n + r.errors, 0) + healthy.reduce((n, r) => n + r.errors, 0);
  const ratio = rpsStopped / rpsHealthy;
  return {
    benchmark: `(m) region isolation: edge hits in region a while region b's Redis is stopped (median of 3 runs of ${options.durationSeconds} s, ${options.connections} connections)`,
    subject: `b stopped: ${fmt(rpsStopped)} req/s, p99 ${fmt(median(stopped.map((r) => r.p99Ms)), 1)} ms, ${errors} errors in a`,
    baseline: `b healthy, same run: ${fmt(rpsHealthy)} req/s, p99 ${fmt(median(healthy.map((r) => r.p99Ms)), 1)} ms`,
    result: `${fmt(ratio * 100, 1)}% of healthy throughput`,
    target: 'no errors in a; ≥ 95%',
    met: errors === 0 && ratio >= 0.95 ? 'yes' : 'no',
  };
}

/**
 * (l) and (m) on one rig (`npm run rig`'s start-up, attached to this
 * process, in a temporary folder): two regions × two origins × two edges, a
 * Redis each, one Kafka behind a Toxiproxy proxy per region (+20 ms each way).
 */
export async function regionBenchmarks(options: {
  connections: number;
  durationSeconds: number;
  writes?: number;
}): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-rig-'));
  const rig = await startRig({ dir, originEnv: { LOG_LEVEL: 'warn' } }).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  try {
    const purge = await crossRegionPurge(rig, options.writes ?? 1000);
    const isolation = await regionIsolation(rig, options);
    return [purge, isolation];
  } finally {
    await rig.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
