import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { createEvictionCache, type EvictionCache, type EvictionPolicy } from '../shared/eviction/index.ts';
import { LfuCache } from '../shared/eviction/lfu.ts';
import type { TraceRequest } from './trace.ts';

/**
 * The eviction reference harness: one request file that Strata's policies
 * and libCacheSim both replay, the same way libCacheSim's simulator does —
 * every request is an access that inserts on a miss, at the request's size
 * (value bytes only: no key or overhead), no TTL; writes insert like reads
 * but only reads count toward the hit ratio. A request that finds its key
 * present is a hit and does not resize the entry (libCacheSim keeps the
 * size an object was inserted with).
 */

/** One row of the request file. */
export interface ReferenceRequest {
  /** Integer object id (the trace's logical block number). */
  readonly id: number;
  readonly sizeBytes: number;
  readonly read: boolean;
}

/** What one replay counted. */
export interface HitCount {
  readonly reads: number;
  readonly readHits: number;
}

/** The policies the harness replays: Strata's three, plus LFU without aging (to match libCacheSim's plain LFU). */
export type ReferencePolicy = EvictionPolicy | 'lfu-no-aging';

/** libCacheSim's counterpart of each harness policy (its class names, lower-cased). */
export const libCacheSimPolicy: Record<ReferencePolicy, 'lru' | 'lfu' | 'lfuda' | 's3fifo'> = {
  lru: 'lru',
  lfu: 'lfuda',
  'lfu-no-aging': 'lfu',
  s3fifo: 's3fifo',
};

/** The project venv with libCacheSim's Python bindings (made by `scripts/ensure-test-prereqs.sh`). */
export const libCacheSimPython = resolve(import.meta.dirname, '..', '.cache', 'libcachesim-venv', 'bin', 'python');

const replayScript = resolve(import.meta.dirname, 'libcachesim-replay.py');

/** The trace as harness requests (`lbn` → id, `size` → bytes, op read/write). */
export function toReferenceRequests(trace: readonly TraceRequest[]): ReferenceRequest[] {
  return trace.map((r) => ({ id: Number(r.key), sizeBytes: r.size, read: r.op === 'read' }));
}

/** Writes the request file both sides consume: `id,size,op` lines, op `r` or `w`. */
export function writeRequestFile(path: string, requests: readonly ReferenceRequest[]): void {
  writeFileSync(path, `${requests.map((r) => `${r.id},${r.sizeBytes},${r.read ? 'r' : 'w'}`).join('\n')}\n`);
}

/** A cache of the harness policy `policy` with a byte budget. */
export function referenceCache(policy: ReferencePolicy, maxBytes: number): EvictionCache<true> {
  return policy === 'lfu-no-aging'
    ? new LfuCache({ maxBytes, aging: false })
    : createEvictionCache(policy, { maxBytes });
}

/** Replays requests through one Strata policy at one budget. */
export function replayStrata(
  policy: ReferencePolicy,
  maxBytes: number,
  requests: readonly ReferenceRequest[],
): HitCount {
  const cache = referenceCache(policy, maxBytes);
  let reads = 0;
  let readHits = 0;
  for (const r of requests) {
    const key = String(r.id);
    const hit = cache.get(key) !== undefined;
    if (!hit) cache.set(key, true, { sizeBytes: r.sizeBytes });
    if (r.read) {
      reads++;
      if (hit) readHits++;
    }
  }
  return { reads, readHits };
}

/**
 * Replays the request file through libCacheSim, one run per policy and budget.
 * @throws Error with the install command when the venv is missing.
 */
export async function replayLibCacheSim(
  requestFile: string,
  runs: readonly { policy: ReferencePolicy; maxBytes: number }[],
): Promise<(HitCount & { policy: ReferencePolicy; maxBytes: number; version: string })[]> {
  if (!existsSync(libCacheSimPython)) {
    throw new Error(`libCacheSim's Python bindings are missing at ${libCacheSimPython}. Run: npm run test:prereqs`);
  }
  const args = runs.map((r) => `${libCacheSimPolicy[r.policy]}:${r.maxBytes}`);
  const { stdout } = await promisify(execFile)(libCacheSimPython, [replayScript, requestFile, ...args], {
    maxBuffer: 1 << 20,
  });
  const lines = stdout.trim().split('\n');
  if (lines.length !== runs.length)
    throw new Error(`libCacheSim printed ${lines.length} results for ${runs.length} runs`);
  return lines.map((line, i) => {
    const out = JSON.parse(line) as { reads: number; readHits: number; libcachesim: string };
    return { ...runs[i]!, reads: out.reads, readHits: out.readHits, version: out.libcachesim };
  });
}

/** Read hit ratio in percent. */
export function hitRatioPercent(count: HitCount): number {
  return count.reads === 0 ? 0 : (100 * count.readHits) / count.reads;
}
