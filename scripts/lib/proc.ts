import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

/** Polls `check` until it returns true or `timeoutMs` passes. Throws with `what` on time-out. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
}

/** True when `command` is on PATH. */
export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Installs Debian packages with apt-get when `command` is missing, saying so on stderr.
 * Throws with the install command to run by hand when that fails (for example not root).
 */
export function ensureDebianCommand(command: string, packages: string[]): void {
  if (hasCommand(command)) return;
  const install = `apt-get update && apt-get install -y ${packages.join(' ')}`;
  process.stderr.write(`strata: '${command}' is missing; installing with: ${install}\n`);
  try {
    execFileSync('sh', ['-c', `DEBIAN_FRONTEND=noninteractive ${install}`], { stdio: 'inherit' });
  } catch {
    throw new Error(`'${command}' is required. Install it with: sudo ${install}`);
  }
  if (!hasCommand(command)) throw new Error(`'${command}' is still missing after: ${install}`);
}

export interface SpawnedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
}

/**
 * Starts a long-running server process. With `detached`, it outlives this
 * process (for `npm run services -- up`); its output goes to `logFile`.
 */
export function spawnServer(
  command: string,
  args: string[],
  options: { logFile: string; detached?: boolean; cwd?: string; env?: NodeJS.ProcessEnv },
): SpawnedProcess {
  const out = openSync(options.logFile, 'a');
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: options.detached ?? false,
    stdio: ['ignore', out, out],
  });
  closeSync(out); // the child holds its own copy
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  if (options.detached) child.unref();
  return { child, pid: child.pid };
}

/** Sends `signal` to a pid, ignoring a process that is already gone. */
export function killPid(pid: number, signal: NodeJS.Signals = 'SIGTERM'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** True while the process exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `pid` has exited, escalating to SIGKILL after `graceMs`. */
export async function stopPid(pid: number, graceMs = 5_000): Promise<void> {
  killPid(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) killPid(pid, 'SIGKILL');
}
