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
  const child = spawn(
    denoBin,
    [
      'run',
      '--allow-net',
      '--allow-env',
      `--allow-read=${root}`,
      '--allow-sys=hostname',
      resolve(root, 'edge/adapters/deno/main.ts'),
    ],
    {
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
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`deno edge did not start in 30 s: ${stderr}`)), 30_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`deno edge exited with ${code}: ${stderr}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const record = JSON.parse(line) as { msg?: string; url?: string };
        if (record.msg === 'edge listening' && record.url) {
          clearTimeout(timer);
          resolveUrl(record.url);
        }
      } catch {
        // not a log record
      }
    });
  });
  return {
    url,
    process: child,
    async close() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return await exited;
    },
  };
}
