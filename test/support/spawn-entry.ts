import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root, where `npm start` and the entry points run. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Variables a test must not inherit from the developer's shell (auth, stores, Kafka, ports). */
const inherited = [
  'AUTH_JWT_SECRET',
  'AUTH_JWKS_URL',
  'AUTH_ISSUER',
  'AUTH_AUDIENCE',
  'EDGE_ORIGIN_TOKEN',
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'KAFKA_BROKERS',
  'ENCRYPTION_KEYS',
  'NODE_ENV',
  'STRATA_TOKEN',
];

/** `process.env` without the Strata variables above, plus `over`. */
export function cleanEnv(over: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>) };
  for (const name of inherited) delete env[name];
  return { ...env, ...over };
}

/** A spawned entry point with its output so far. */
export interface Spawned {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code (signal exits resolve null). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Runs `node <file> ...args` in `cwd` (default: the repository root) with `env` (see {@link cleanEnv}). */
export function spawnEntry(file: string, env: Record<string, string>, args: string[] = [], cwd = repoRoot): Spawned {
  const child = spawn(process.execPath, [file, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
