import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

const root = resolve(import.meta.dirname, '..', '..');
/** The `deno` executable the `deno` dev dependency installs (its platform package holds the binary). */
export const denoBin = resolve(root, 'node_modules', '.bin', 'deno');

/** A Deno edge running in its own `deno` process. */
export interface DenoEdge {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly process: ChildProcess;
  /** Sends SIGTERM and resolves with the exit code once the process has exited. */
  close(): Promise<number | null>;
}

/**
 * Starts `edge/adapters/deno/main.ts` in a real `deno` process (as
 * `npm run start:edge:deno` does) on a free port, pointing at `originUrl`,
 * with `env` on top; resolves once it prints that it listens.
 */
export async function denoEdgeFor(originUrl: string, env: Record<string, string> = {}): Promise<DenoEdge> {
  const {
    value: url,
    process,
    close,
  } = await runDeno('edge/adapters/deno/main.ts', originUrl, env, (record) => {
    const { msg, url } = record as { msg?: string; url?: string };
    return msg === 'edge listening' ? url : undefined;
  });
  return { url, process, close };
}

/** The Deno twin of `test/support/deno-fast-hit-twin.ts`: one edge served through the fast path and by the app alone. */
export interface DenoFastHitTwin {
  /** `http://127.0.0.1:PORT` of the fast-hit handler (fast path, then the app). */
  readonly fast: string;
  /** `http://127.0.0.1:PORT` of the app alone. */
  readonly full: string;
  /** `http://127.0.0.1:PORT` of the control listener (`PUT /clock`, `GET /last`, `GET /connected`). */
  readonly control: string;
  close(): Promise<number | null>;
}

/** Starts `test/support/deno-fast-hit-twin.ts` in a real `deno` process, pointing at `originUrl`, with `env` on top. */
export async function denoFastHitTwin(originUrl: string, env: Record<string, string> = {}): Promise<DenoFastHitTwin> {
  const { value, close } = await runDeno('test/support/deno-fast-hit-twin.ts', originUrl, env, (record) => {
    const { fast, full, control } = record as Partial<DenoFastHitTwin>;
    return fast && full && control ? { fast, full, control } : undefined;
  });
  return { ...value, close };
}

/**
 * Runs `script` (relative to the repository) in a `deno` process with the
 * edge's environment and `env` on top; resolves with the first value `ready`
 * finds in a JSON line the process prints on stdout.
 */
async function runDeno<T>(
  script: string,
  originUrl: string,
  env: Record<string, string>,
  ready: (record: unknown) => T | undefined,
): Promise<{ value: T; process: ChildProcess; close(): Promise<number | null> }> {
  const permissions = ['--allow-net', '--allow-env', `--allow-read=${root}`, '--allow-sys=hostname'];
  const child = spawn(denoBin, ['run', ...permissions, resolve(root, script)], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      EDGE_PORT: '0',
      LOG_LEVEL: 'warn',
      ORIGIN_URL: originUrl,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const value = await new Promise<T>((resolveValue, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 30 s: ${stderr}`)), 30_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}: ${stderr}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let found: T | undefined;
      try {
        found = ready(JSON.parse(line));
      } catch {
        // not a JSON line
      }
      if (found !== undefined) {
        clearTimeout(timer);
        resolveValue(found);
      }
    });
  });
  return {
    value,
    process: child,
    async close() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return await exited;
    },
  };
}
