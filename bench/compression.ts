import { CacheService } from '../origin/cache-service.ts';
import { InProcessPurgeBus } from '../origin/purge/in-process-bus.ts';
import { memoryStore } from '../origin/store/memory.ts';
import { passThroughStore } from '../origin/store/pass-through.ts';
import { defaultEvictionPolicy, type EvictionPolicy } from '../shared/eviction/index.ts';
import type { BenchRow } from './load.ts';
import { loadTrace, type TraceRequest } from './trace.ts';

/** Options of {@link compressionBenchmarks}. */
export interface CompressionBenchOptions {
  /** Requests of the trace to replay; default all. */
  readonly limit?: number;
  /** Byte budget of the store, as a fraction of the trace's distinct-key bytes. Default 0.25. */
  readonly budgetFraction?: number;
  /** `COMPRESS_MIN_BYTES` of the "on" run. Default 1024. */
  readonly compressMinBytes?: number;
  /** The store's eviction policy (`EVICTION_POLICY`); default the shipped one. */
  readonly policy?: EvictionPolicy;
}

/** What one replay measured. */
export interface ReplayFigures {
  readonly requests: number;
  readonly reads: number;
  readonly hits: number;
  /** Bytes of values the trace wrote (writes and miss fills), as clients sent them. */
  readonly bytesIn: number;
  /** Bytes the store was handed for them (compressed where that saved space). */
  readonly bytesStored: number;
  /** Bytes the store held at the end (its budget counts stored bytes). */
  readonly residentBytes: number;
  /** Process CPU (user + system) per request, µs. */
  readonly cpuMicrosPerRequest: number;
}

/**
 * Synthetic values for a trace that records only sizes: slices of a
 * pseudo-random JSON document (seeded, so every run is the same), each key
 * starting at its own offset. JSON of ids, numbers and words from a small
 * vocabulary compresses about as API payloads do; incompressible bytes would
 * show zstd declining to store larger envelopes, a constant pattern would
 * flatter it.
 */
export function jsonPool(bytes: number, seed = 1): Uint8Array {
  let state = seed >>> 0;
  const rand = () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
  const words = ['alpha', 'beta', 'gamma', 'delta', 'region', 'user', 'order', 'item', 'price', 'active', 'eu', 'us'];
  const parts: string[] = [];
  let length = 0;
  for (let id = 0; length < bytes; id++) {
    const record = JSON.stringify({
      id: Math.floor(rand() * 1e9),
      name: `${words[Math.floor(rand() * words.length)]}-${Math.floor(rand() * 1e5)}`,
      score: Math.round(rand() * 1e6) / 100,
      tags: [words[Math.floor(rand() * words.length)], words[Math.floor(rand() * words.length)]],
      active: rand() < 0.5,
      seq: id,
    });
    parts.push(record);
    length += record.length + 1;
  }
  return new TextEncoder().encode(parts.join('\n')).subarray(0, bytes);
}

function offsetFor(key: string, span: number): number {
  let h = 2_166_136_261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16_777_619) >>> 0;
  return span > 0 ? h % span : 0;
}

/**
 * Replays `requests` cache-aside (a read that misses is filled with a write of
 * the trace's size) through the origin's `CacheService` over the memory store
 * with `budgetBytes` and eviction `policy`, in this process, one request at a time.
 */
export async function replayThroughService(
  requests: readonly TraceRequest[],
  budgetBytes: number,
  compressMinBytes: number,
  pool: Uint8Array,
  policy: EvictionPolicy,
): Promise<ReplayFigures> {
  const store = memoryStore({ maxBytes: budgetBytes, policy });
  let saved = 0;
  const service = new CacheService({
    store: passThroughStore(store, store),
    bus: new InProcessPurgeBus({ retainedEntries: 16 }),
    defaultTtlSeconds: 3600,
    maxValueBytes: pool.byteLength,
    compressMinBytes,
    onCompressed: (before, after) => {
      saved += before - after;
    },
  });
  const valueFor = (r: TraceRequest) => {
    const start = offsetFor(r.key, pool.byteLength - r.size);
    return pool.subarray(start, start + r.size);
  };
  let reads = 0;
  let hits = 0;
  let bytesIn = 0;
  const write = async (r: TraceRequest) => {
    bytesIn += r.size;
    await service.set('trace', r.key, { value: valueFor(r), contentType: 'application/json' });
  };
  const cpu = process.cpuUsage();
  for (const r of requests) {
    if (r.op === 'write') {
      await write(r);
      continue;
    }
    reads++;
    if ((await service.get('trace', r.key)).entry) hits++;
    else await write(r);
  }
  const used = process.cpuUsage(cpu);
  return {
    requests: requests.length,
    reads,
    hits,
    bytesIn,
    bytesStored: bytesIn - saved,
    residentBytes: store.bytes,
    cpuMicrosPerRequest: (used.user + used.system) / requests.length,
  };
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const describe = (f: ReplayFigures) =>
  `hit ${((100 * f.hits) / Math.max(1, f.reads)).toFixed(1)}%, stored ${mib(f.bytesStored)} of ${mib(f.bytesIn)}, ` +
  `${f.cpuMicrosPerRequest.toFixed(0)} µs CPU/req`;

/**
 * Benchmark (x): the real trace replayed with compression off and on at the
 * same byte budget (a fraction of the trace's distinct-key bytes, so the
 * budget binds): bytes stored, hit ratio, CPU per request. Reported, no target.
 */
export async function compressionBenchmarks(options: CompressionBenchOptions = {}): Promise<BenchRow[]> {
  const requests = loadTrace(undefined, options.limit);
  const distinct = new Map<string, number>();
  for (const r of requests) distinct.set(r.key, Math.max(distinct.get(r.key) ?? 0, r.size));
  const distinctBytes = [...distinct.values()].reduce((a, b) => a + b, 0);
  const budget = Math.max(1, Math.floor(distinctBytes * (options.budgetFraction ?? 0.25)));
  const pool = jsonPool(Math.max(1, ...requests.map((r) => r.size)) * 4);
  const policy = options.policy ?? defaultEvictionPolicy;
  const off = await replayThroughService(requests, budget, 0, pool, policy);
  const on = await replayThroughService(requests, budget, options.compressMinBytes ?? 1024, pool, policy);
  return [
    {
      benchmark: `(x) compression, trace replay (${requests.length} req, budget ${mib(budget)}, ${policy})`,
      subject: `zstd > ${options.compressMinBytes ?? 1024} B: ${describe(on)}`,
      baseline: `off: ${describe(off)}`,
      result: `stored/in ${(on.bytesStored / Math.max(1, on.bytesIn)).toFixed(2)}, hit ${((100 * on.hits) / Math.max(1, on.reads)).toFixed(1)}% vs ${((100 * off.hits) / Math.max(1, off.reads)).toFixed(1)}%`,
      target: 'reported',
      met: 'n/a',
    },
  ];
}
