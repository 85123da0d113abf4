/**
 * Bundles `edge/adapters/workers/index.ts` into `dist/worker.js` (ESM) with esbuild, for
 * Miniflare tests and `wrangler deploy` (see `wrangler.toml`).
 */
import { resolve } from 'node:path';
import { build } from 'esbuild';

/** Output path of the bundle. */
export const workerBundlePath = resolve(import.meta.dirname, '..', 'dist', 'worker.js');

/** Another entry to bundle the same way (a test Worker); default: the edge Worker into `dist/worker.js`. */
export interface WorkerBundleOptions {
  /** Entry module, absolute path. */
  readonly entry: string;
  /** Output file, absolute path. */
  readonly outfile: string;
  /** Module specifiers replaced by other modules (absolute paths), e.g. a test framework shim. */
  readonly alias?: Record<string, string>;
  /** Identifiers replaced by constant expressions (esbuild `define`). */
  readonly define?: Record<string, string>;
}

/** Builds the Worker bundle (or the one `options` names); resolves with its path. */
export async function buildWorker(options?: WorkerBundleOptions): Promise<string> {
  const outfile = options?.outfile ?? workerBundlePath;
  await build({
    entryPoints: [options?.entry ?? resolve(import.meta.dirname, '..', 'edge', 'adapters', 'workers', 'index.ts')],
    outfile,
    alias: options?.alias,
    define: options?.define,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2023',
    mainFields: ['module', 'main'],
    conditions: ['worker', 'browser', 'import'],
    logLevel: 'warning',
  });
  return outfile;
}

/** Bundles one Worker module (`entry`) for workerd into `outfile` (ESM, runtime-neutral); resolves with its path. */
export async function bundleForWorkers(entry: string, outfile: string): Promise<string> {
  return await buildWorker({ entry, outfile });
}

if (import.meta.main) {
  process.stdout.write(`${await buildWorker()}\n`);
}
