import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type HitCount,
  hitRatioPercent,
  type ReferencePolicy,
  type ReferenceRequest,
  replayLibCacheSim,
  replayStrata,
  toReferenceRequests,
  writeRequestFile,
} from '../../bench/eviction-reference.ts';
import { loadTrace } from '../../bench/trace.ts';

/*
 * Strata's eviction policies against libCacheSim (PyPI `libcachesim`, in the
 * venv scripts/ensure-test-prereqs.sh makes) on the real CloudPhysics trace:
 * one request file, replayed by both in the same order, at 32, 64 and 256 MiB.
 */
const budgets = [32, 64, 256].map((mib) => mib * 1024 * 1024);
const policies: readonly ReferencePolicy[] = ['lru', 's3fifo', 'lfu-no-aging', 'lfu'];

let dir: string;
let requests: ReferenceRequest[];
const reference = new Map<string, HitCount>();
const id = (policy: ReferencePolicy, maxBytes: number) => `${policy}@${maxBytes}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-eviction-'));
  requests = toReferenceRequests(loadTrace());
  const file = join(dir, 'requests.csv');
  writeRequestFile(file, requests);
  const runs = policies.flatMap((policy) => budgets.map((maxBytes) => ({ policy, maxBytes })));
  for (const r of await replayLibCacheSim(file, runs)) reference.set(id(r.policy, r.maxBytes), r);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.each(budgets)('eviction against libCacheSim at %d bytes', (maxBytes) => {
  // Tolerance in percentage points of read hit ratio; 0 = the same number of read hits.
  const cases: [title: string, policy: ReferencePolicy, tolerance: number][] = [
    ['LRU (lru-cache) has exactly libCacheSim LRU read hits', 'lru', 0],
    ['S3-FIFO is within 0.5 points of libCacheSim S3FIFO (small 0.1, ghost 0.9, threshold 2)', 's3fifo', 0.5],
    ['LFU without aging has exactly libCacheSim LFU read hits (same counting, FIFO tie-break)', 'lfu-no-aging', 0],
    [
      'LFU with dynamic aging is within 1.5 points of libCacheSim LFUDA (its hit adds the minimum priority)',
      'lfu',
      1.5,
    ],
  ];
  it.each(cases)('%s', (_title, policy, tolerance) => {
    const ours = replayStrata(policy, maxBytes, requests);
    const theirs = reference.get(id(policy, maxBytes))!;
    expect(theirs.reads).toBeGreaterThan(0);
    expect(ours.reads).toBe(theirs.reads);
    if (tolerance === 0) expect(ours.readHits).toBe(theirs.readHits);
    else expect(Math.abs(hitRatioPercent(ours) - hitRatioPercent(theirs))).toBeLessThanOrEqual(tolerance);
  });

  it('S3-FIFO reads hit at least as often as LRU', () => {
    expect(replayStrata('s3fifo', maxBytes, requests).readHits).toBeGreaterThanOrEqual(
      replayStrata('lru', maxBytes, requests).readHits,
    );
  });
});
