/**
 * What each constant response header costs `Deno.serve` (bench (a′)): two
 * bare Deno handlers answering as the Deno edge answers a hit (a prebuilt
 * response's clone plus an `X-Request-Id`, `bench/bare-deno-headers.ts`),
 * one with `Content-Type` and 1 more header, one with `Content-Type` and 6
 * (the edge hit's header set), measured pinned and interleaved (3 pairs, as
 * `bench/perf.ts` measures): server CPU µs per request, and the difference
 * per extra header. Run: `node bench/deno-header-cost.ts`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signServiceToken } from '../scripts/lib/dev-auth.ts';
import { best, ensureBenchTools, paired, pinnedRun, pinnedServers, spreadPercent, writeWrkFiles } from './pinned.ts';
import { startProcess } from './procs.ts';
import { deno } from './runtimes-bench.ts';

ensureBenchTools();
const dir = mkdtempSync(join(tmpdir(), 'strata-deno-headers-'));
// The same requests as bench (a′): a bearer token each, rotating through 1,000.
const tokens = await Promise.all(
  Array.from({ length: 1000 }, (_, i) =>
    signServiceToken('bench-secret-bench-secret-0123', { serviceId: `b-${i}` }, 3600),
  ),
);
const files = writeWrkFiles(dir, tokens);
const run = { seconds: 5, connections: 32 };
const { started, stopAll } = pinnedServers();
try {
  const few = await started(startProcess('bench/bare-deno-headers.ts', 'BARE_PORT', { BARE_HEADERS: '1' }, [], deno));
  const many = await started(startProcess('bench/bare-deno-headers.ts', 'BARE_PORT', { BARE_HEADERS: '6' }, [], deno));
  const path = '/api/v1/cache/bench/hot';
  const p = await paired(
    () => pinnedRun(`${many.url}${path}`, [many.pid], files, run),
    () => pinnedRun(`${few.url}${path}`, [few.pid], files, run),
  );
  const a = best(p.anchor);
  const s = best(p.subject);
  const line = (label: string, r: typeof a, runs: typeof p.anchor) =>
    `${label}: ${r.cpuUsPerReq.toFixed(1)} µs CPU/req, ${Math.round(r.rps)} req/s (spread ${spreadPercent(runs).toFixed(0)}%)`;
  console.log(line('3 response headers (Content-Type, X-Cache, X-Request-Id)', a, p.anchor));
  console.log(line('8 response headers (the Deno edge hit set)', s, p.subject));
  console.log(
    `difference: ${(s.cpuUsPerReq - a.cpuUsPerReq).toFixed(1)} µs for 5 headers, ${((s.cpuUsPerReq - a.cpuUsPerReq) / 5).toFixed(2)} µs per header`,
  );
} finally {
  await stopAll();
}
