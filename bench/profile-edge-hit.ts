/**
 * Where the Node edge's CPU goes on the hit path of bench (a): an origin and
 * a Node edge (auth on, 1 KiB value, 1,000 rotating tokens, as in
 * `bench/perf.ts`), the edge pinned to core 0 under `node --cpu-prof`, wrk
 * pinned to core 1 for `PROFILE_SECONDS` (default 10); prints the busy share
 * and the top functions by self time (`bench/cpu-profile.ts`).
 * Run: `node bench/profile-edge-hit.ts`.
 *
 * `PROFILE_RUNTIME=deno` profiles the Deno edge (bench (a′)) the same way,
 * with V8's tick profiler (`deno run --v8-flags=--prof`; Deno has no
 * `--cpu-prof`), and prints the head of `node --prof-process`'s report:
 * shares of ticks in JavaScript, in the `deno` binary and in shared
 * libraries, then the JavaScript functions by ticks.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signServiceToken } from '../scripts/lib/dev-auth.ts';
import { summariseCpuProfiles } from './cpu-profile.ts';
import { ensureBenchTools, pin, pinnedRun, writeWrkFiles } from './pinned.ts';
import { startProcess } from './procs.ts';
import { deno } from './runtimes-bench.ts';

ensureBenchTools();
const seconds = Number(process.env.PROFILE_SECONDS ?? 10);
const onDeno = process.env.PROFILE_RUNTIME === 'deno';
const dir = mkdtempSync(join(tmpdir(), 'strata-edge-profile-'));
const secret = 'bench-secret-bench-secret-bench-secret-0123';
const tokens = await Promise.all(
  Array.from({ length: 1000 }, (_, i) => signServiceToken(secret, { serviceId: `bench-${i}` }, 3600)),
);
const files = writeWrkFiles(dir, tokens);
const path = '/api/v1/cache/bench/hot';
const origin = await startProcess('origin/main.ts', 'ORIGIN_PORT', {
  AUTH_JWT_SECRET: secret,
  EDGE_STATS_INTERVAL_SECONDS: '0',
});
const profiles = join(dir, 'profiles');
const v8Log = join(dir, 'v8.log');
const edgeEnv = {
  AUTH_JWT_SECRET: secret,
  ORIGIN_URL: origin.url,
  EDGE_ORIGIN_TOKEN: tokens[0]!,
  EDGE_MAX_TTL_SECONDS: '3600',
  EDGE_STATS_INTERVAL_SECONDS: '0',
};
const edge = onDeno
  ? await startProcess(
      'edge/adapters/deno/main.ts',
      'EDGE_PORT',
      edgeEnv,
      [`--v8-flags=--prof,--no-logfile-per-isolate,--logfile=${v8Log}`],
      deno,
    )
  : await startProcess('edge/adapters/node/main.ts', 'EDGE_PORT', edgeEnv, [
      '--cpu-prof',
      `--cpu-prof-dir=${profiles}`,
    ]);
try {
  pin(edge.pid, 0);
  const put = await fetch(`${origin.url}${path}?ttl=3600`, {
    method: 'PUT',
    body: 'x'.repeat(1024),
    headers: { Authorization: `Bearer ${tokens[0]}` },
  });
  if (!put.ok) throw new Error(`seeding failed: ${put.status}`);
  const run = await pinnedRun(`${edge.url}${path}`, [edge.pid], files, { seconds, connections: 32 });
  console.log(`edge: ${run.cpuUsPerReq.toFixed(1)} µs CPU/req, ${Math.round(run.rps)} req/s, ${run.errors} errors`);
} finally {
  await edge.stop();
  await origin.stop();
}
if (onDeno) {
  const report = spawnSync(process.execPath, ['--prof-process', v8Log], { encoding: 'utf8', maxBuffer: 64 << 20 });
  // The summary, then the JavaScript and C++ sections' heads.
  const lines = report.stdout.split('\n');
  const head = (title: string, n: number) => {
    const at = lines.findIndex((l) => l.startsWith(title));
    if (at !== -1) console.log(lines.slice(at, at + n).join('\n'));
  };
  head(' [Summary]:', 10);
  head(' [JavaScript]:', 32);
  head(' [C++]:', 12);
} else {
  for (const line of summariseCpuProfiles(profiles, 25)) console.log(line);
}
rmSync(dir, { recursive: true, force: true });
