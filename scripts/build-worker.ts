/**
 * Bundles `edge/adapters/workers/index.ts` into `dist/worker.js` (ESM) with esbuild, for
 * Miniflare tests and `wrangler deploy` (see `wrangler.toml`).
 */
import { resolve } from 'node:path';
import { build } from 'esbuild';

/** Output path of the bundle. */
export const workerBundlePath = resolve(import.meta.dirname, '..', 'dist', 'worker.js');

/** Builds the Worker bundle; resolves with its path. */
export async function buildWorker(): Promise<string> {
  return await bundleForWorkers(
    resolve(import.meta.dirname, '..', 'edge', 'adapters', 'workers', 'index.ts'),
    workerBundlePath,
  );
}

/** Bundles one Worker module (`entry`) for workerd into `outfile` (ESM, runtime-neutral); resolves with its path. */
export async function bundleForWorkers(entry: string, outfile: string): Promise<string> {
  await build({
    entryPoints: [entry],
    outfile,
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

if (import.meta.main) {
  process.stdout.write(`${await buildWorker()}\n`);
}
