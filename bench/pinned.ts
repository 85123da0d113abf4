/**
 * The fair measurement on two cores: every server under test (and its Redis)
 * pinned to core 0 with `taskset`, the load generator (`wrk`, 1 thread) pinned
 * to core 1, and server CPU time per request read from `/proc/PID/stat`
 * (user + system, all threads) around each run. Requests rotate through 1,000
 * distinct valid tokens, so a per-token cache cannot hide the cost of
 * verification behind one hot token.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDebianCommand } from '../scripts/lib/proc.ts';
import type { BenchProcess } from './procs.ts';

const clockTicks = 100; // USER_HZ on Linux

/** CPU seconds (user + system) `pid` has used so far; 0 once it is gone. */
export function cpuSecondsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of /proc/PID/stat (here offset by the 2 fields before ') ').
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return 0;
  }
}

/** `pid` and every process below it (Varnish's manager and its cache child, for one). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (const task of safeReaddir(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    for (const child of children ? children.split(' ').map(Number) : []) out.push(...processTree(child));
  }
  return out;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Pins every thread of `pid` (and its future threads) to `core`. */
export function pin(pid: number, core: number): void {
  execFileSync('taskset', ['-a', '-cp', String(core), String(pid)], { stdio: 'ignore' });
}

/** Installs what the pinned measurements need from Debian (`wrk`, and the anchors `varnish` and `webdis`). */
export function ensureBenchTools(): void {
  ensureDebianCommand('wrk', ['wrk']);
  ensureDebianCommand('varnishd', ['varnish']);
  ensureDebianCommand('webdis', ['webdis']);
}

/** What one pinned run measured. */
export interface PinnedRun {
  readonly rps: number;
  readonly requests: number;
  readonly p99Ms: number;
  /** Server CPU µs per request: the processes' CPU time over the run / requests. */
  readonly cpuUsPerReq: number;
  /** Non-2xx/3xx answers and socket errors. */
  readonly errors: number;
}

const wrkScript = `
local tokens = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
end
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
`;

/** A request other than a bare GET for {@link writeWrkFiles}: its method, extra headers and body bytes. */
export interface WrkRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** The wrk script for `request`: the body is read once (binary) from a file beside the script. */
function wrkScriptFor(request: WrkRequest, bodyFile: string): string {
  const headers = Object.entries(request.headers)
    .map(([name, value]) => `[${JSON.stringify(name)}] = ${JSON.stringify(value)}`)
    .join(', ');
  return `
local tokens = {}
local i = 0
local body
init = function(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  local f = io.open(${JSON.stringify(bodyFile)}, "rb")
  body = f:read("*a")
  f:close()
end
request = function()
  i = i % #tokens + 1
  return wrk.format(${JSON.stringify(request.method)}, nil, { ${headers}, ["Authorization"] = "Bearer " .. tokens[i] }, body)
end
`;
}

/**
 * Writes the wrk script and the token file into `dir`; returns the paths wrk
 * needs. Without `request` every request is a GET; with it, each request has
 * its method, headers and body (a gRPC-web frame, for one).
 */
export function writeWrkFiles(
  dir: string,
  tokens: readonly string[],
  request?: WrkRequest,
): { script: string; tokens: string } {
  const name = request ? `tokens-${request.method.toLowerCase()}` : 'tokens';
  const script = join(dir, `${name}.lua`);
  const tokenFile = join(dir, 'tokens.txt');
  const bodyFile = join(dir, `${name}.body`);
  if (request) writeFileSync(bodyFile, request.body);
  writeFileSync(script, request ? wrkScriptFor(request, bodyFile) : wrkScript);
  writeFileSync(tokenFile, `${tokens.join('\n')}\n`);
  return { script, tokens: tokenFile };
}

function parseDurationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

/** Runs wrk once (pinned to core 1, 1 thread) and returns its output. */
async function wrk(url: string, files: { script: string; tokens: string }, seconds: number, connections: number) {
  const args = ['-c', '1', 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', files.script];
  return await new Promise<string>((resolve, reject) => {
    const child = spawn('taskset', [...args, url, '--', files.tokens], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited ${code}: ${out}`))));
  });
}

/**
 * One measured run: a 1 s warm-up, then `seconds` of load from wrk, with the
 * CPU time of `pids` (and their children) read before and after.
 */
export async function pinnedRun(
  url: string,
  pids: readonly number[],
  files: { script: string; tokens: string },
  options: { seconds: number; connections: number },
): Promise<PinnedRun> {
  await wrk(url, files, 1, options.connections);
  const tree = () => pids.flatMap(processTree);
  const cpu = () => tree().reduce((sum, pid) => sum + cpuSecondsOf(pid), 0);
  const before = cpu();
  const out = await wrk(url, files, options.seconds, options.connections);
  const used = cpu() - before;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1];
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((s, n) => s + Number(n), 0) : 0;
  return {
    rps,
    requests,
    p99Ms: p99 ? parseDurationMs(p99) : Number.NaN,
    cpuUsPerReq: requests > 0 ? (used / requests) * 1e6 : Number.NaN,
    errors: non2xx + socketErrors,
  };
}

/** A subject and its anchor, each measured `runs` times, interleaved. */
export interface PairedRuns {
  readonly subject: PinnedRun[];
  readonly anchor: PinnedRun[];
  /** Runs repeated because the anchor moved more than 15% from its median. */
  readonly repeated: number;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

/**
 * Measures a subject beside its anchor: `runs` interleaved pairs (anchor,
 * then subject); a pair whose anchor CPU/request is more than 15% from the
 * anchors' median is measured again (at most `runs` extra pairs), so a noisy
 * moment of the machine does not decide the ratio.
 */
export async function paired(
  subject: () => Promise<PinnedRun>,
  anchor: () => Promise<PinnedRun>,
  runs = 3,
): Promise<PairedRuns> {
  const pairs: { s: PinnedRun; a: PinnedRun }[] = [];
  for (let i = 0; i < runs; i++) pairs.push({ a: await anchor(), s: await subject() });
  let repeated = 0;
  for (let extra = 0; extra < runs; extra++) {
    const m = median(pairs.map((p) => p.a.cpuUsPerReq));
    const outlier = pairs.findIndex((p) => Math.abs(p.a.cpuUsPerReq - m) / m > 0.15);
    if (outlier < 0) break;
    pairs[outlier] = { a: await anchor(), s: await subject() };
    repeated++;
  }
  return { subject: pairs.map((p) => p.s), anchor: pairs.map((p) => p.a), repeated };
}

/** The best (lowest CPU/request) of several runs. */
export function best(runs: readonly PinnedRun[]): PinnedRun {
  return runs.reduce((a, b) => (b.cpuUsPerReq < a.cpuUsPerReq ? b : a));
}

/** Spread of CPU/request over runs, as (max − min) / min, percent. */
export function spreadPercent(runs: readonly PinnedRun[]): number {
  const xs = runs.map((r) => r.cpuUsPerReq);
  return (100 * (Math.max(...xs) - Math.min(...xs))) / Math.min(...xs);
}

/**
 * The servers of one pinned measurement: `started` pins each to core 0 as it
 * comes up, `onStop` registers anything else to stop (Redis, anchors), and
 * `stopAll` stops everything in reverse order, ignoring failures.
 */
export function pinnedServers(): {
  started(p: Promise<BenchProcess>): Promise<BenchProcess>;
  onStop(stop: () => Promise<void>): void;
  stopAll(): Promise<void>;
} {
  const stops: (() => Promise<void>)[] = [];
  return {
    async started(p) {
      const proc = await p;
      pin(proc.pid, 0);
      stops.push(() => proc.stop());
      return proc;
    },
    onStop(stop) {
      stops.push(stop);
    },
    async stopAll() {
      for (const stop of stops.reverse()) await stop().catch(() => {});
    },
  };
}
