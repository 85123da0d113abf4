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
  const compare = (policy: ReferencePolicy) => {
    const ours = replayStrata(policy, maxBytes, requests);
    const theirs = reference.get(id(policy, maxBytes))!;
    expect(ours.reads).toBe(theirs.reads);
    expect(theirs.reads).toBeGreaterThan(0);
    return {
      ours: hitRatioPercent(ours),
      theirs: hitRatioPercent(theirs),
      oursHits: ours.readHits,
      theirHits: theirs.readHits,
    };
  };

  it('LRU has exactly libCacheSim LRU read hit ratio', () => {
    const { oursHits, theirHits } = compare('lru');
    expect(oursHits).toBe(theirHits);
  });

  it('S3-FIFO is within 0.5 percentage points of libCacheSim S3FIFO (small 0.1, ghost 0.9, threshold 2)', () => {
    const { ours, theirs } = compare('s3fifo');
    expect(Math.abs(ours - theirs)).toBeLessThanOrEqual(0.5);
  });

  it('LFU without aging has exactly libCacheSim LFU read hit ratio (same counting and FIFO tie-break)', () => {
    const { oursHits, theirHits } = compare('lfu-no-aging');
    expect(oursHits).toBe(theirHits);
  });

  it('LFU with dynamic aging stays within 1.5 points of libCacheSim LFUDA, whose hit adds the cache age', () => {
    const { ours, theirs } = compare('lfu');
    expect(Math.abs(ours - theirs)).toBeLessThanOrEqual(1.5);
  });

  it('S3-FIFO reads hit at least as often as LRU', () => {
    expect(replayStrata('s3fifo', maxBytes, requests).readHits).toBeGreaterThanOrEqual(
      replayStrata('lru', maxBytes, requests).readHits,
    );
  });
});
