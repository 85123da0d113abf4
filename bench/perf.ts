/**
 * The hit-path performance figures, each beside its anchor in the same run,
 * measured the fair way on two cores (`bench/pinned.ts`): servers and Redis
 * on core 0, wrk (1 thread, 32 connections) on core 1, server CPU per
 * request from /proc, 1,000 distinct valid tokens round-robin, best of 3
 * interleaved runs, a run repeated when its anchor moved more than 15%.
 *
 * - (a) Node edge hit, auth on, 1 KiB, vs Varnish in front of the edge
 *   (`-s malloc,64m`, `return (hash)`, `beresp.ttl = 3600s`, object warmed);
 * - (a′) the same on the Deno edge;
 * - (e′) origin GET on a Redis hit, auth on, origin + Redis CPU, vs Webdis
 *   (`threads: 1`, `pool_size: 4`) + the same Redis reading `GET /GET/key.txt`.
 * - (h) gRPC-web `Get` on the same origin and Redis hit, origin + Redis CPU
 *   per call, vs REST `GET` of the same key (wrk posts a pre-encoded
 *   gRPC-web frame, rotating the same tokens).
 * - (s) the real trace through edge + origin on embedded defaults beside a
 *   bare proxy + store pair (`bench/trace-bench.ts`).
 * Bare Hono routes on Node and Deno are printed as references.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { GetRequestSchema, GetResponseSchema } from '../gen/strata/cache/v1/cache_pb.js';
import { signServiceToken } from '../scripts/lib/dev-auth.ts';
import { freePort } from '../scripts/lib/ports.ts';
import { stopPid, waitFor } from '../scripts/lib/proc.ts';
import { redisCommand, startRedis } from '../scripts/services/redis.ts';
import { frame } from './grpc-bench.ts';
import { type BenchRow, fmt } from './load.ts';
import {
  best,
  ensureBenchTools,
  type PairedRuns,
  type PinnedRun,
  paired,
  pin,
  pinnedRun,
  pinnedServers,
  spreadPercent,
  writeWrkFiles,
} from './pinned.ts';
import { startProcess } from './procs.ts';
import { deno } from './runtimes-bench.ts';
import { traceBenchmark } from './trace-bench.ts';

interface Anchor {
  readonly url: string;
  readonly pids: number[];
  stop(): Promise<void>;
}

/** Varnish 7 in front of `backend`, pinned to core 0, caching every GET for an hour. */
async function startVarnish(backend: string, dir: string): Promise<Anchor> {
  const port = await freePort();
  const b = new URL(backend);
  const vcl = join(dir, 'v.vcl');
  writeFileSync(
    vcl,
    `vcl 4.1;
backend default { .host = "${b.hostname}"; .port = "${b.port}"; }
sub vcl_recv { return (hash); }
sub vcl_backend_response { set beresp.ttl = 3600s; }
`,
  );
  const workdir = join(dir, 'varnish');
  const child = spawn(
    'taskset',
    ['-c', '0', 'varnishd', '-F', '-a', `127.0.0.1:${port}`, '-f', vcl, '-s', 'malloc,64m', '-n', workdir],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`varnishd on ${url}`, async () => (await fetch(`${url}/health`)).status > 0, 20_000);
  return { url, pids: [child.pid!], stop: () => stopPid(child.pid!) };
}

/** Webdis (`threads: 1`, `pool_size: 4`) over the Redis on `redisPort`, pinned to core 0. */
async function startWebdis(redisPort: number, dir: string): Promise<Anchor> {
  const port = await freePort();
  const config = join(dir, 'webdis.json');
  writeFileSync(
    config,
    JSON.stringify({
      redis_host: '127.0.0.1',
      redis_port: redisPort,
      http_host: '127.0.0.1',
      http_port: port,
      threads: 1,
      pool_size: 4,
      daemonize: false,
      verbosity: 0,
      logfile: join(dir, 'webdis.log'),
    }),
  );
  const child = spawn('taskset', ['-c', '0', 'webdis', config], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`webdis on ${url}`, async () => (await fetch(`${url}/PING`)).ok, 20_000);
  return { url, pids: [child.pid!], stop: () => stopPid(child.pid!) };
}

const cell = (r: PinnedRun) =>
  `${fmt(r.cpuUsPerReq, 1)} µs CPU/req, ${fmt(r.rps)} req/s, p99 ${fmt(r.p99Ms, 2)} ms, ${r.errors} errors`;
const spread = (p: PairedRuns) =>
  `spread ${fmt(spreadPercent(p.subject), 0)}% / anchor ${fmt(spreadPercent(p.anchor), 0)}%${p.repeated ? `, ${p.repeated} run(s) repeated` : ''}`;

function ratioRow(benchmark: string, p: PairedRuns, anchorName: string, hard: number, stretch: number): BenchRow {
  const s = best(p.subject);
  const a = best(p.anchor);
  const ratio = s.cpuUsPerReq / a.cpuUsPerReq;
  const errors = [...p.subject, ...p.anchor].reduce((n, r) => n + r.errors, 0);
  return {
    benchmark,
    subject: `${cell(s)} (${spread(p)})`,
    baseline: `${anchorName}: ${cell(a)}`,
    result: `${fmt(ratio, 2)}× the anchor's CPU/request`,
    target: `≤ ${hard}× (stretch ≤ ${stretch}×)`,
    met: errors === 0 && ratio <= hard ? 'yes' : 'no',
  };
}

/** A reference server's best run beside the same run's anchor. */
function referenceRow(benchmark: string, run: PinnedRun, p: PairedRuns): BenchRow {
  const a = best(p.anchor);
  return {
    benchmark,
    subject: cell(run),
    baseline: `Varnish hit: ${cell(a)}`,
    result: `${fmt(run.cpuUsPerReq / a.cpuUsPerReq, 2)}× the anchor`,
    target: 'reference',
    met: 'n/a',
  };
}

/** The pinned hit-path figures (a), (a′), (e′) with their anchors. */
export async function perfBenchmarks(options: {
  durationSeconds: number;
  connections: number;
  sections?: string;
  /** Bench (s) replays only the trace's first requests (default: all). */
  traceLimit?: number;
}) {
  ensureBenchTools();
  const want = (s: string) => !options.sections || options.sections.includes(s);
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'strata-perf-'));
  chmodSync(dir, 0o755); // varnishd reads its VCL after dropping to its own user
  const secret = 'bench-secret-bench-secret-bench-secret-0123';
  const tokens = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => signServiceToken(secret, { serviceId: `bench-${i}` }, 3600)),
  );
  const files = writeWrkFiles(dir, tokens);
  const run = { seconds: options.durationSeconds, connections: options.connections };
  const measure = (url: string, pids: number[]) => () => pinnedRun(url, pids, files, run);
  const auth = { AUTH_JWT_SECRET: secret };
  const path = '/api/v1/cache/bench/hot';
  const value = 'x'.repeat(1024);
  const { started, onStop, stopAll } = pinnedServers();
  try {
    const redis = await startRedis({ dir: join(dir, 'redis') });
    onStop(() => redis.stop());
    pin(redis.pids[0]!, 0);
    const origin = await started(
      startProcess('origin/main.ts', 'ORIGIN_PORT', {
        ...auth,
        REDIS_URL: redis.url,
        EDGE_STATS_INTERVAL_SECONDS: '0',
      }),
    );
    const put = await fetch(`${origin.url}${path}?ttl=3600`, {
      method: 'PUT',
      body: value,
      headers: { Authorization: `Bearer ${tokens[0]}` },
    });
    if (!put.ok) throw new Error(`seeding the hot key failed: ${put.status} ${await put.text()}`);
    const edgeEnv = {
      ...auth,
      ORIGIN_URL: origin.url,
      EDGE_ORIGIN_TOKEN: tokens[0]!,
      EDGE_MAX_TTL_SECONDS: '3600',
      EDGE_STATS_INTERVAL_SECONDS: '0',
    };
    const warm = async (url: string) => {
      const res = await fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${tokens[1]}` } });
      if (!res.ok) throw new Error(`warming ${url} failed: ${res.status}`);
      await res.arrayBuffer();
    };

    if (want('a')) {
      const edge = await started(startProcess('edge/adapters/node/main.ts', 'EDGE_PORT', edgeEnv));
      const varnish = await startVarnish(edge.url, dir);
      onStop(() => varnish.stop());
      await warm(edge.url);
      await warm(varnish.url);
      const bare = await started(startProcess('bench/bare-hono.ts', 'BARE_PORT', { BARE_VALUE_BYTES: '1024' }));
      const p = await paired(measure(`${edge.url}${path}`, [edge.pid]), measure(`${varnish.url}${path}`, varnish.pids));
      rows.push(ratioRow('(a) Node edge hit, auth on, 1 KiB, pinned', p, 'Varnish hit', 1.5, 1.0));
      const bareRun = best([await measure(`${bare.url}${path}`, [bare.pid])()]);
      rows.push(referenceRow('(a) reference: bare Hono route on Node, pinned', bareRun, p));
      // The floor: node:http itself answering the same bytes, no framework and no cache.
      const floor = await started(startProcess('bench/bare-node.ts', 'BARE_PORT', { BARE_VALUE_BYTES: '1024' }));
      rows.push(
        referenceRow(
          '(a) reference: bare node:http listener, pinned',
          best([await measure(`${floor.url}${path}`, [floor.pid])()]),
          p,
        ),
      );
      if (want('n')) {
        const denoEdge = await started(startProcess('edge/adapters/deno/main.ts', 'EDGE_PORT', edgeEnv, [], deno));
        await warm(denoEdge.url);
        const pd = await paired(
          measure(`${denoEdge.url}${path}`, [denoEdge.pid]),
          measure(`${varnish.url}${path}`, varnish.pids),
        );
        rows.push(ratioRow("(a') Deno edge hit, auth on, 1 KiB, pinned", pd, 'Varnish hit', 1.0, 0.8));
        const denoFloor = await started(
          startProcess('bench/bare-deno.ts', 'BARE_PORT', { BARE_VALUE_BYTES: '1024' }, [], deno),
        );
        rows.push(
          referenceRow(
            "(a') reference: bare Deno.serve handler, pinned",
            best([await measure(`${denoFloor.url}${path}`, [denoFloor.pid])()]),
            pd,
          ),
        );
      }
    }

    if (want('e')) {
      await redisCommand(redis.port, `SET key ${value}`);
      const webdis = await startWebdis(redis.port, dir);
      onStop(() => webdis.stop());
      const p = await paired(
        measure(`${origin.url}${path}`, [origin.pid, redis.pids[0]!]),
        measure(`${webdis.url}/GET/key.txt`, [...webdis.pids, redis.pids[0]!]),
      );
      rows.push(
        ratioRow("(e') origin GET on a Redis hit, auth on, origin + Redis CPU, pinned", p, 'Webdis + Redis', 2.0, 1.5),
      );
    }

    if (want('h')) {
      const rpcUrl = `${origin.url}/strata.cache.v1.CacheService/Get`;
      const headers = { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' };
      const body = frame(toBinary(GetRequestSchema, create(GetRequestSchema, { namespace: 'bench', key: 'hot' })));
      const check = await fetch(rpcUrl, {
        method: 'POST',
        headers: { ...headers, Authorization: `Bearer ${tokens[1]}` },
        body,
      });
      const answer = Buffer.from(await check.arrayBuffer());
      // gRPC-web answers HTTP 200 even for errors: decode the one message to know the call hit.
      const reply =
        answer.byteLength >= 5
          ? fromBinary(GetResponseSchema, answer.subarray(5, 5 + answer.readUInt32BE(1)))
          : undefined;
      if (!reply?.found || reply.value.byteLength !== value.length)
        throw new Error('gRPC-web Get did not hit the stored value');
      const grpcFiles = writeWrkFiles(dir, tokens, { method: 'POST', headers, body });
      const p = await paired(
        () => pinnedRun(rpcUrl, [origin.pid, redis.pids[0]!], grpcFiles, run),
        measure(`${origin.url}${path}`, [origin.pid, redis.pids[0]!]),
      );
      rows.push(
        ratioRow(
          '(h) gRPC-web Get vs REST GET, origin Redis hit, auth on, origin + Redis CPU, pinned',
          p,
          'REST GET',
          2.0,
          1.3,
        ),
      );
    }

    if (want('s')) {
      rows.push(
        await traceBenchmark({
          secret,
          token: tokens[0]!,
          ...(options.traceLimit ? { limit: options.traceLimit } : {}),
        }),
      );
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
