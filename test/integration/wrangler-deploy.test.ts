import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { buildWorker } from '../../scripts/build-worker.ts';

const root = resolve(import.meta.dirname, '..', '..');
const outdir = mkdtempSync(join(tmpdir(), 'strata-wrangler-'));

/**
 * Keeps the Workers deployment deployable: bundles the Worker as
 * `npm run deploy:worker` does and runs `wrangler deploy --dry-run` on
 * `wrangler.toml` (no account needed), which validates the configuration
 * and the bundle and lists the bindings it would upload.
 */
describe('Workers deployment', () => {
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('wrangler deploy --dry-run accepts wrangler.toml and the bundle', async () => {
    await buildWorker();
    const { stdout } = await promisify(execFile)(
      join(root, 'node_modules', '.bin', 'wrangler'),
      ['deploy', '--dry-run', '--outdir', outdir],
      {
        cwd: root,
        env: { ...process.env, CI: '1', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
        timeout: 120_000,
      },
    );
    expect(stdout).toContain('--dry-run: exiting now');
    for (const binding of ['ORIGIN_URL', 'EDGE_LEASE_MS', 'EDGE_PURGE_POLL_MS']) expect(stdout).toContain(binding);
  }, 150_000);
});
