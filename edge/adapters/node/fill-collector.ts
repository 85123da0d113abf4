import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Smallest pace (bytes of origin bodies between two collections), whatever the budget: 4 MiB. */
export const minCollectEveryBytes = 4 * 1024 * 1024;

/**
 * How many bytes of origin bodies the Node edge reads between two full
 * collections: an eighth of its byte budget (`EDGE_MAX_BYTES`), at least
 * {@link minCollectEveryBytes}.
 *
 * Why: every value the edge fills arrives in socket read buffers and is
 * copied once into its own buffer; the socket buffers die young, and a
 * value that the tier evicts later dies old. Both live outside the V8 heap
 * (ArrayBuffer backing stores, `malloc`ed) and are freed only when their
 * small JS wrappers are collected: the socket buffers at the next young
 * collection (a 16 MiB semi-space's worth of JS allocation later), the
 * evicted values only at the next full collection, which V8 starts on its own
 * once external memory has grown by about 64 MiB since the last one. Under a
 * stream of misses of 64 KiB values, an edge with a 32 MiB budget peaked
 * 2.1–2.7× its budget above its idle resident set; with a collection every
 * eighth of the budget read, 0.65–1.21× (docs/benchmarks.md, (d)). The price
 * is CPU on misses (a full collection marks the whole heap and pauses the
 * event loop) and none on hits: on the real trace's data path it added about
 * a quarter to the two servers' CPU, which is why it is off unless
 * `EDGE_GC_EVERY_BYTES` asks for it (`auto` for this pace).
 */
export function collectEveryBytes(maxBytes: number): number {
  return Math.max(minCollectEveryBytes, Math.floor(maxBytes / 8));
}

/**
 * The pace `EDGE_GC_EVERY_BYTES` asks for, bytes: `auto` is
 * {@link collectEveryBytes} of the budget, a number is itself, 0 is off.
 */
export function collectionPace(setting: number | 'auto', maxBytes: number): number {
  return setting === 'auto' ? collectEveryBytes(maxBytes) : setting;
}

/**
 * Paces full garbage collections by the bytes of origin bodies read: call
 * the returned function with each body's length (bytes); after every
 * `everyBytes` it asks for one collection (`collect`, default: V8's full
 * collection run as a task on the event loop, not inside the caller).
 * Hits read no origin bodies and never trigger one. `collections` counts the
 * collections asked for.
 */
export function fillCollector(
  everyBytes: number,
  collect: () => void = asyncFullCollection(),
): ((bodyBytes: number) => void) & { readonly collections: number } {
  let sinceLast = 0;
  let collections = 0;
  const onBody = (bodyBytes: number) => {
    sinceLast += bodyBytes;
    if (sinceLast < everyBytes) return;
    sinceLast = 0;
    collections++;
    collect();
  };
  return Object.defineProperty(onBody, 'collections', { get: () => collections }) as typeof onBody & {
    readonly collections: number;
  };
}

/**
 * V8's `gc` function without starting Node with `--expose-gc`: the flag set
 * at run time exposes `gc` in contexts created afterwards (Node's
 * `v8.setFlagsFromString`, `vm.runInNewContext`). Called with
 * `{ type: 'major', execution: 'async' }` it schedules one full (mark-compact)
 * collection as a task instead of running it on the caller's stack.
 */
function asyncFullCollection(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options: { type: 'major'; execution: 'async' }) => unknown;
  return () => void gc({ type: 'major', execution: 'async' });
}
