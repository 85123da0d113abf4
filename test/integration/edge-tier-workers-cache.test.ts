import { resolve } from 'node:path';
import { Miniflare } from 'miniflare';
import { afterAll, describe, expect, it } from 'vitest';
import { buildWorker } from '../../scripts/build-worker.ts';

/**
 * The `EdgeTier` conformance suite run inside workerd (Miniflare) against
 * the real Cache API, through the Workers edge's Cache API tier: the test
 * Worker (`test/workers/edge-tier-conformance.worker.ts`) holds the suite,
 * and each case here runs one of its cases there. A case the tier lacks the
 * capability for is reported skipped, never passed.
 */
const root = resolve(import.meta.dirname, '..', '..');
const script = await buildWorker({
  entry: resolve(root, 'test', 'workers', 'edge-tier-conformance.worker.ts'),
  outfile: resolve(root, 'dist', 'edge-tier-conformance.worker.js'),
  alias: { vitest: resolve(root, 'test', 'workers', 'vitest-shim.ts') },
  // vitest's matchers print with pretty-format, whose react-is reads it (workerd has no `process`).
  define: { 'process.env.NODE_ENV': '"production"' },
});
// At least 100 runs per property, as the suite asks.
const numRuns = String(Math.max(100, Number(process.env.STRATA_WORKERD_PROPERTY_RUNS ?? 100)));
const mf = new Miniflare({
  modules: true,
  scriptPath: script,
  compatibilityDate: '2025-09-01',
  bindings: { NUM_RUNS: numRuns },
});
const cases = (await (await mf.dispatchFetch('http://conformance.test/cases')).json()) as Array<{
  name: string;
  skip: boolean;
}>;

describe('EdgeTier conformance inside workerd: Cache API tier', () => {
  afterAll(async () => {
    await mf.dispose();
  });

  it('collects the whole suite', () => {
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });

  cases.forEach((c, i) => {
    if (c.skip) {
      it.skip(c.name, () => {});
      return;
    }
    it(c.name, { timeout: 300_000 }, async () => {
      const res = await mf.dispatchFetch(`http://conformance.test/run?case=${i}`, { method: 'POST' });
      const result = (await res.json()) as { ok: boolean; error?: string };
      expect(result.error).toBeUndefined();
      expect(result.ok).toBe(true);
    });
  });
});
