/**
 * A Node edge for the memory benchmark only: the same `startEdge` as
 * `edge/adapters/node/main.ts`, run with `--expose-gc`, collecting garbage on SIGUSR2 so the
 * benchmark can read memory that is live, not merely not yet collected; it
 * answers each collection with `gc <live bytes>` on stdout. Configured by the usual env vars.
 */

import { startEdge } from '../edge/adapters/node/server.ts';
import { edgeConfigSchema, parseConfig } from '../shared/config.ts';

const edge = await startEdge(parseConfig(edgeConfigSchema, process.env));
const collect = (globalThis as { gc?: () => void }).gc;
if (!collect) throw new Error('run with --expose-gc');
process.on('SIGUSR2', () => {
  collect();
  const m = process.memoryUsage();
  // Live bytes after a full collection: the JS heap in use plus ArrayBuffer backing stores (the values).
  process.stdout.write(`gc ${m.heapUsed + m.arrayBuffers}\n`);
});
process.on('SIGTERM', () => void edge.close().then(() => process.exit(0)));
