/**
 * Where the Node edge's CPU goes on the hit path of bench (a): an origin and
 * a Node edge (auth on, 1 KiB value, 1,000 rotating tokens, as in
 * `bench/perf.ts`), the edge pinned to core 0 under `node --cpu-prof`, wrk
 * pinned to core 1 for `PROFILE_SECONDS` (default 10); prints the busy share
 * and the top functions by self time (`bench/cpu-profile.ts`).
 * Run: `node bench/profile-edge-hit.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signServiceToken } from '../scripts/lib/dev-auth.ts';
import { summariseCpuProfiles } from './cpu-profile.ts';
import { ensureBenchTools, pin, pinnedRun, writeWrkFiles } from './pinned.ts';
import { startProcess } from './procs.ts';

ensureBenchTools();
const seconds = Number(process.env.PROFILE_SECONDS ?? 10);
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
const edge = await startProcess(
  'edge/adapters/node/main.ts',
  'EDGE_PORT',
  {
    AUTH_JWT_SECRET: secret,
    ORIGIN_URL: origin.url,
    EDGE_ORIGIN_TOKEN: tokens[0]!,
    EDGE_MAX_TTL_SECONDS: '3600',
    EDGE_STATS_INTERVAL_SECONDS: '0',
  },
  ['--cpu-prof', `--cpu-prof-dir=${profiles}`],
);
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
for (const line of summariseCpuProfiles(profiles, 25)) console.log(line);
rmSync(dir, { recursive: true, force: true });
