/**
 * Eviction benchmarks (part of `npm run bench`, or alone:
 * `node bench/eviction.ts`):
 *
 * - (r) read hit ratio of each policy on the full real trace at 32, 64 and
 *   256 MiB, beside libCacheSim's figure for the same policy and budget and
 *   beside LRU (bench/eviction-reference.ts replays both the same way);
 * - (r′) operations per second of each policy in a tight loop (a get that
 *   hits; a set of a new key into a full cache, which evicts), beside a bare
 *   lru-cache doing the same in the same run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { createEvictionCache, evictionPolicies } from '../shared/eviction/index.ts';
import {
  hitRatioPercent,
  libCacheSimPolicy,
  type ReferencePolicy,
  replayLibCacheSim,
  replayStrata,
  toReferenceRequests,
  writeRequestFile,
} from './eviction-reference.ts';
import type { BenchRow } from './load.ts';
import { loadTrace, table } from './trace.ts';

const budgetsMiB = [32, 64, 256];
const pct = (v: number) => `${v.toFixed(2)}%`;

/** (r): hit ratios of Strata's policies and libCacheSim's on the real trace. */
export async function hitRatioBenchmarks(tracePath?: string): Promise<BenchRow[]> {
  const requests = toReferenceRequests(loadTrace(tracePath));
  const dir = mkdtempSync(join(tmpdir(), 'strata-eviction-bench-'));
  try {
    const file = join(dir, 'requests.csv');
    writeRequestFile(file, requests);
    const policies: ReferencePolicy[] = [...evictionPolicies];
    const runs = budgetsMiB.flatMap((mib) => policies.map((policy) => ({ policy, maxBytes: mib * 2 ** 20 })));
    const reference = await replayLibCacheSim(file, runs);
    const rows: BenchRow[] = [];
    for (const [i, run] of runs.entries()) {
      const ours = hitRatioPercent(replayStrata(run.policy, run.maxBytes, requests));
      const theirs = hitRatioPercent(reference[i]!);
      const lru = hitRatioPercent(replayStrata('lru', run.maxBytes, requests));
      const delta = ours - theirs;
      const tolerance = run.policy === 'lru' ? 0 : run.policy === 's3fifo' ? 0.5 : 1.5;
      rows.push({
        benchmark: `(r) read hit ratio, ${run.maxBytes / 2 ** 20} MiB`,
        subject: `${run.policy} ${pct(ours)}`,
        baseline: `libCacheSim ${reference[i]!.version} ${libCacheSimPolicy[run.policy].toUpperCase()} ${pct(theirs)}; LRU ${pct(lru)}`,
        result: `${delta >= 0 ? '+' : ''}${delta.toFixed(2)} pt vs libCacheSim`,
        target: tolerance === 0 ? 'equal' : `within ${tolerance} pt`,
        met: Math.abs(delta) <= tolerance + 1e-9 ? 'yes' : 'no',
      });
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface LoopSubject {
  readonly name: string;
  get(key: string): unknown;
  set(key: string, value: number, sizeBytes: number): void;
}

/** Operations per second of one round of `body` run `n` times. */
function opsPerSecond(n: number, body: (i: number) => void): number {
  const started = performance.now();
  for (let i = 0; i < n; i++) body(i);
  return n / ((performance.now() - started) / 1000);
}

/** (r′): ops/s of each policy's get-hit and evicting set, beside bare lru-cache. */
export function throughputBenchmarks(): BenchRow[] {
  const entries = 100_000;
  const sizeBytes = 1_000;
  const maxBytes = entries * sizeBytes;
  const subjects: LoopSubject[] = [
    (() => {
      const bare = new LRUCache<string, number>({ maxSize: maxBytes });
      return {
        name: 'lru-cache (bare)',
        get: (k: string) => bare.get(k),
        set: (k: string, v: number, size: number) => void bare.set(k, v, { size }),
      };
    })(),
    ...evictionPolicies.map((policy) => {
      const cache = createEvictionCache<number>(policy, { maxBytes });
      return {
        name: policy,
        get: (k: string) => cache.get(k),
        set: (k: string, v: number, size: number) => void cache.set(k, v, { sizeBytes: size }),
      };
    }),
  ];
  const keys = Array.from({ length: entries }, (_, i) => `key-${i}`);
  const fresh = Array.from({ length: 4 * entries }, (_, i) => `new-${i}`);
  for (const s of subjects) for (const [i, k] of keys.entries()) s.set(k, i, sizeBytes);
  const results = subjects.map((s) => ({ name: s.name, getHit: 0, setEvict: 0, next: 0 }));
  // Rounds alternate between subjects so that the shared machine's swings hit them alike; the
  // first round warms the JIT and is discarded, each subject keeps its best later round.
  for (let round = 0; round < 4; round++) {
    for (const [j, s] of subjects.entries()) {
      const r = results[j]!;
      // A fixed pseudo-random walk over present keys (LCG), so every subject reads the same sequence.
      let x = 1;
      const getHit = opsPerSecond(entries, () => {
        x = (x * 1_103_515_245 + 12_345) & 0x7fffffff;
        if (s.get(keys[x % entries]!) === undefined) throw new Error(`${s.name}: a get that should hit missed`);
      });
      // New keys into a full cache: every set evicts. The key set is refilled after, so gets still hit.
      const setEvict = opsPerSecond(entries, () => {
        s.set(fresh[r.next++ % fresh.length]!, r.next, sizeBytes);
      });
      for (const [i, k] of keys.entries()) s.set(k, i, sizeBytes);
      if (round > 0) {
        r.getHit = Math.max(r.getHit, getHit);
        r.setEvict = Math.max(r.setEvict, setEvict);
      }
    }
  }
  const bare = results[0]!;
  const kops = (v: number) => `${(v / 1000).toFixed(0)} k ops/s`;
  const row = (benchmark: string, name: string, ops: number, bareOps: number): BenchRow => ({
    benchmark,
    subject: `${name} ${kops(ops)}`,
    baseline: `lru-cache ${kops(bareOps)}`,
    result: `${(ops / bareOps).toFixed(2)}× lru-cache`,
    target: 'measured',
    met: 'n/a',
  });
  return results
    .slice(1)
    .flatMap((r) => [
      row('(r′) get (hit), 100k entries', r.name, r.getHit, bare.getHit),
      row('(r′) set with eviction, full cache', r.name, r.setEvict, bare.setEvict),
    ]);
}

/** Both eviction benchmarks, as rows of `npm run bench`'s table. */
export async function evictionBenchmarks(): Promise<BenchRow[]> {
  return [...(await hitRatioBenchmarks()), ...throughputBenchmarks()];
}

if (import.meta.main) {
  const rows = await evictionBenchmarks();
  process.stdout.write(
    `${table(
      ['benchmark', 'measured', 'same-run baseline', 'result', 'target', 'met'],
      rows.map((r) => [r.benchmark, r.subject, r.baseline, r.result, r.target, r.met]),
    )}\n`,
  );
}
