import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { freePort } from '../scripts/lib/ports.ts';
import { waitFor } from '../scripts/lib/proc.ts';

const root = resolve(import.meta.dirname, '..');

/** A server process started for a benchmark. */
export interface BenchProcess {
  readonly url: string;
  readonly pid: number;
  /** CPU seconds (user + system) the process has used so far, from /proc. */
  cpuSeconds(): number;
  /** Resident set size now, bytes, from /proc. */
  rssBytes(): number;
  /** Peak resident set size so far (`VmHWM`), bytes, from /proc. */
  peakRssBytes(): number;
  /**
   * Asks a process started from `bench/edge-with-gc.ts` to collect garbage;
   * resolves with its live bytes (heap used + ArrayBuffers) afterwards.
   */
  collectGarbage(): Promise<number>;
  /**
   * What a process started from `bench/edge-with-gc.ts` printed as `mem <json>` before its last
   * collection: its memory sample at the highest RSS seen until then (bytes), or undefined.
   */
  memoryAtPeak(): unknown;
  stop(): Promise<void>;
}

const clockTicks = 100; // USER_HZ on Linux

/**
 * Starts `node <script>` (relative to the repo) with `env` plus `portVar` set
 * to a free port (and `nodeFlags` before the script), and waits until
 * `GET /health` answers.
 */
export async function startProcess(
  script: string,
  portVar: string,
  env: Record<string, string> = {},
  nodeFlags: string[] = [],
  /** Another runtime's executable and its arguments before the script (default: this Node). */
  runtime: { bin: string; args: string[] } = { bin: process.execPath, args: [] },
): Promise<BenchProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(runtime.bin, [...runtime.args, ...nodeFlags, resolve(root, script)], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, [portVar]: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let gcCount = 0;
  let liveBytes = Number.NaN;
  let memoryAtPeak: unknown;
  child.stdout?.on('data', (chunk: Buffer) => {
    for (const m of chunk.toString().matchAll(/^mem (.+)$/gm)) memoryAtPeak = JSON.parse(m[1]!);
    for (const m of chunk.toString().matchAll(/^gc (\d+)$/gm)) {
      gcCount++;
      liveBytes = Number(m[1]);
    }
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${script} on ${url}`, async () => (await fetch(`${url}/health`)).ok, 20_000);
  const pid = child.pid!;
  return {
    url,
    pid,
    cpuSeconds() {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      // utime and stime are fields 14 and 15 of /proc/PID/stat (here offset by the 2 fields before ') ').
      return (Number(fields[11]) + Number(fields[12])) / clockTicks;
    },
    rssBytes: () => statusBytes(pid, 'VmRSS:'),
    peakRssBytes: () => statusBytes(pid, 'VmHWM:'),
    async collectGarbage() {
      const target = gcCount + 1;
      child.kill('SIGUSR2');
      await waitFor('garbage collection', () => gcCount >= target, 10_000, 10);
      return liveBytes;
    },
    memoryAtPeak: () => memoryAtPeak,
    async stop() {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), bytes. */
function statusBytes(pid: number, field: string): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(field));
  return Number(line?.match(/(\d+)/)?.[1] ?? 0) * 1024;
}
