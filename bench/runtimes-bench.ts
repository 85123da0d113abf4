import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { Miniflare } from 'miniflare';
import { buildWorker } from '../scripts/build-worker.ts';
import { signServiceToken } from '../scripts/lib/dev-auth.ts';
import { type BenchRow, fmt, load } from './load.ts';
import { type BenchProcess, startProcess } from './procs.ts';
import { percentile } from './trace.ts';

const root = resolve(import.meta.dirname, '..');
/** The Deno executable of the `deno` npm package and the permissions an edge needs. */
export const deno = {
  bin: resolve(root, 'node_modules', '.bin', 'deno'),
  args: ['run', '--allow-net', '--allow-env', '--allow-read', '--allow-sys=hostname'],
};

/**
 * (n) the edge hit path on Deno beside the Node edge and a bare Hono route on
 * each runtime (1 KiB, authentication on); (o) the whole production trace
 * replayed through a Deno edge and a Node edge (`npm run replay`: hit ratio
 * per tier, throughput, errors); (p) the Workers edge's added
 * latency from polling the purge log: p50/p99 of a hit with no poll due and
 * with a poll due on every request (workerd via Miniflare, sequential).
 * Reported without targets.
 */
export async function runtimeBenchmarks(options: {
  durationSeconds: number;
  connections: number;
  sections?: string;
}): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const want = (section: string) => !options.sections || options.sections.includes(section);
  const secret = 'bench-secret-bench-secret-bench-secret-0123';
  const token = await signServiceToken(secret, { serviceId: 'bench' }, 3600);
  const auth = { AUTH_JWT_SECRET: secret };
  const valueBytes = 1024;
  const origin = await startProcess('origin/main.ts', 'ORIGIN_PORT', auth);
  const started: BenchProcess[] = [];
  try {
    await fetch(`${origin.url}/api/v1/cache/bench/hot?ttl=3600`, {
      method: 'PUT',
      body: new Uint8Array(valueBytes),
      headers: { Authorization: `Bearer ${token}` },
    });
    if (want('n')) {
      const edgeEnv = { ...auth, ORIGIN_URL: origin.url, EDGE_ORIGIN_TOKEN: token, EDGE_STATS_INTERVAL_SECONDS: '0' };
      const nodeEdge = await startProcess('edge/adapters/node/main.ts', 'EDGE_PORT', edgeEnv);
      const denoEdge = await startProcess('edge/adapters/deno/main.ts', 'EDGE_PORT', edgeEnv, [], deno);
      const bareNode = await startProcess('bench/bare-hono.ts', 'BARE_PORT', { BARE_VALUE_BYTES: String(valueBytes) });
      const bareDeno = await startProcess(
        'bench/bare-hono-deno.ts',
        'BARE_PORT',
        { BARE_VALUE_BYTES: String(valueBytes) },
        [],
        deno,
      );
      started.push(nodeEdge, denoEdge, bareNode, bareDeno);
      const path = '/api/v1/cache/bench/hot';
      const request = (server: BenchProcess) => ({
        url: `${server.url}${path}`,
        headers: { Authorization: `Bearer ${token}` },
      });
      for (const edge of [nodeEdge, denoEdge]) await (await fetch(request(edge).url, request(edge))).arrayBuffer();
      const measured = [
        ['Deno edge', await load(request(denoEdge), denoEdge, options)],
        ['Node edge', await load(request(nodeEdge), nodeEdge, options)],
        ['bare Hono on Deno', await load(request(bareDeno), bareDeno, options)],
        ['bare Hono on Node', await load(request(bareNode), bareNode, options)],
      ] as const;
      const cell = ([name, r]: (typeof measured)[number]) =>
        `${name}: ${fmt(r.rps)} req/s, p99 ${fmt(r.p99Ms, 1)} ms, ${fmt(r.cpuUsPerReq, 1)} µs CPU/req, ${r.errors} errors`;
      rows.push({
        benchmark: '(n) edge hit path by runtime, 1 KiB, auth on',
        subject: cell(measured[0]),
        baseline: measured.slice(1).map(cell).join('; '),
        result: `Deno edge ${fmt(measured[0][1].cpuUsPerReq, 1)} vs Node edge ${fmt(measured[1][1].cpuUsPerReq, 1)} µs CPU/req`,
        target: 'reported',
        met: 'n/a',
      });
    }
    if (want('o')) {
      // (o) the whole production trace through a fresh Deno edge and a fresh Node edge, one after the other,
      // each over its own namespace so the second run starts as cold as the first.
      const replays: [string, string][] = [];
      for (const [name, script, runtime] of [
        ['Deno edge', 'edge/adapters/deno/main.ts', deno],
        ['Node edge', 'edge/adapters/node/main.ts', undefined],
      ] as const) {
        const edgeEnv = { ...auth, ORIGIN_URL: origin.url, EDGE_ORIGIN_TOKEN: token, EDGE_STATS_INTERVAL_SECONDS: '0' };
        const edge = await startProcess(script, 'EDGE_PORT', edgeEnv, [], runtime);
        started.push(edge);
        const namespace = `trace-${name.startsWith('Deno') ? 'deno' : 'node'}`;
        const { stdout } = await promisify(execFile)(
          process.execPath,
          [resolve(root, 'scripts/replay.ts'), '--edge', edge.url, '--namespace', namespace, '--token', token],
          { maxBuffer: 1 << 20 },
        ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
        replays.push([name, summary(stdout)]);
        await edge.stop();
      }
      rows.push({
        benchmark: '(o) real-trace replay (whole trace, concurrency 16)',
        subject: `${replays[0]![0]}: ${replays[0]![1]}`,
        baseline: `${replays[1]![0]}: ${replays[1]![1]}`,
        result: 'see the two rows of the replay table',
        target: 'reported',
        met: 'n/a',
      });
    }
    if (want('p')) {
      const hits = async (pollMs: string) => {
        const mf = new Miniflare({
          modules: true,
          scriptPath: await buildWorker(),
          compatibilityDate: '2025-09-01',
          bindings: {
            ...auth,
            ORIGIN_URL: origin.url,
            EDGE_ORIGIN_TOKEN: token,
            EDGE_PURGE_POLL_MS: pollMs,
            EDGE_LEASE_MS: '120000',
          },
        });
        try {
          const get = async () => {
            const res = await mf.dispatchFetch('http://edge.bench/api/v1/cache/bench/hot', {
              headers: { Authorization: `Bearer ${token}` },
            });
            await res.arrayBuffer();
            return res.headers.get('X-Cache');
          };
          await get();
          const ms: number[] = [];
          for (let i = 0; i < 1_000; i++) {
            const t = performance.now();
            if ((await get()) !== 'HIT') throw new Error('expected a hit');
            ms.push(performance.now() - t);
          }
          return ms;
        } finally {
          await mf.dispose();
        }
      };
      const noPoll = await hits('60000');
      const everyPoll = await hits('1');
      const pct = (ms: number[]) => `p50 ${fmt(percentile(ms, 50), 2)} ms, p99 ${fmt(percentile(ms, 99), 2)} ms`;
      rows.push({
        benchmark: '(p) Workers hit latency from polling (workerd, 1,000 sequential hits)',
        subject: `a poll due on every hit: ${pct(everyPoll)}`,
        baseline: `no poll due: ${pct(noPoll)}`,
        result: `+${fmt(percentile(everyPoll, 50) - percentile(noPoll, 50), 2)} ms at p50`,
        target: 'reported',
        met: 'n/a',
      });
    }
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    await origin.stop();
  }
  return rows;
}

/** The hit ratios, throughput and errors of `npm run replay`'s table, on one line. */
function summary(table: string): string {
  const wanted = ['edge hit ratio', 'origin store hit ratio', 'overall hit ratio', 'throughput', 'errors'];
  return table
    .split('\n')
    .filter((line) => wanted.some((w) => line.startsWith(w)))
    .map((line) => line.trim().replace(/\s{2,}/g, ': '))
    .join(', ');
}
