/**
 * A Node edge for the memory benchmark only: the same `startEdge` as
 * `edge/adapters/node/main.ts`, run with `--expose-gc`, collecting garbage on SIGUSR2 so the
 * benchmark can read memory that is live, not merely not yet collected; it
 * answers each collection with `gc <live bytes>` on stdout. Configured by the usual env vars.
 *
 * It also samples its own memory every 10 ms (`process.memoryUsage()` and V8's new space) and,
 * before each collection, prints the sample taken at the highest resident set size seen so far
 * as `mem <json>` (bytes), with its pace of full collections (`EDGE_GC_EVERY_BYTES`): where the
 * peak is, between ArrayBuffer backing stores (values and socket reads, outside the V8 heap) and
 * the V8 heap (young generation included).
 */

import { getHeapSpaceStatistics } from 'node:v8';
import { collectionPace } from '../edge/adapters/node/fill-collector.ts';
import { startEdge } from '../edge/adapters/node/server.ts';
import { edgeConfigSchema, parseConfig } from '../shared/config.ts';

const config = parseConfig(edgeConfigSchema, process.env);
const edge = await startEdge(config);
const collectEvery = collectionPace(config.EDGE_GC_EVERY_BYTES, config.EDGE_MAX_BYTES);
const collect = (globalThis as { gc?: () => void }).gc;
if (!collect) throw new Error('run with --expose-gc');

/** Memory at one instant, bytes. */
interface MemorySample {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  newSpace: number;
  arrayBuffers: number;
}
const sample = (): MemorySample => {
  const m = process.memoryUsage();
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  return {
    rss: m.rss,
    heapTotal: m.heapTotal,
    heapUsed: m.heapUsed,
    newSpace: young?.space_size ?? 0,
    arrayBuffers: m.arrayBuffers,
  };
};
let atPeak = sample();
let maxArrayBuffers = atPeak.arrayBuffers;
setInterval(() => {
  const now = sample();
  if (now.arrayBuffers > maxArrayBuffers) maxArrayBuffers = now.arrayBuffers;
  if (now.rss > atPeak.rss) atPeak = now;
}, 10).unref();

process.on('SIGUSR2', () => {
  process.stdout.write(`mem ${JSON.stringify({ atPeak, maxArrayBuffers, collectEveryBytes: collectEvery })}\n`);
  atPeak = sample();
  maxArrayBuffers = atPeak.arrayBuffers;
  collect();
  const m = process.memoryUsage();
  // Live bytes after a full collection: the JS heap in use plus ArrayBuffer backing stores (the values).
  process.stdout.write(`gc ${m.heapUsed + m.arrayBuffers}\n`);
});
process.on('SIGTERM', () => void edge.close().then(() => process.exit(0)));
