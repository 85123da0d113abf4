/**
 * `npm run replay -- --trace <csv> --edge <url> [--limit N] [--concurrency C] [--namespace NS] [--token JWT]`
 *
 * Replays a production access trace through an edge, cache-aside: a read
 * that misses is filled with a write of the trace's size. Ends with a table:
 * requests, hit ratio per tier, p50/p95/p99 latency (ms), throughput, errors.
 *
 * Credential: `--token`, else `STRATA_TOKEN` (`cache:read cache:write` in the
 * namespace). Exit codes: 0 no errors, 1 some requests failed.
 */
import { parseArgs } from 'node:util';
import { defaultTracePath, loadTrace, percentile, table } from '../bench/trace.ts';
import { bearerHeaders, cliToken, refusedHint, tokenOption } from './lib/cli-token.ts';

const { values: args } = parseArgs({
  options: {
    trace: { type: 'string', default: defaultTracePath },
    edge: { type: 'string', default: 'http://127.0.0.1:8787' },
    limit: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    namespace: { type: 'string', default: 'trace' },
    ttl: { type: 'string', default: '3600' },
    ...tokenOption,
  },
});
const token = cliToken(args.token, process.env);
const auth = bearerHeaders(token);

const limit = args.limit ? Number(args.limit) : Number.POSITIVE_INFINITY;
const concurrency = Number(args.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('replay: --concurrency must be a positive integer\n');
  process.exit(2);
}
let requests: ReturnType<typeof loadTrace>;
try {
  requests = loadTrace(args.trace, limit);
} catch (error) {
  process.stderr.write(`replay: ${(error as Error).message}\n`);
  process.exit(2);
}
const base = `${args.edge.replace(/\/+$/, '')}/api/v1/cache/${args.namespace}`;
const payload = new Uint8Array(Math.max(1, ...requests.map((r) => r.size))).map((_, i) => i & 0xff);

const stats = { reads: 0, writes: 0, edgeHits: 0, originHits: 0, misses: 0, fills: 0, errors: 0 };
const latenciesMs: number[] = [];
const errorSamples: string[] = [];

async function write(key: string, size: number): Promise<void> {
  const res = await fetch(`${base}/${key}?ttl=${args.ttl}`, {
    method: 'PUT',
    body: payload.subarray(0, size),
    headers: { 'Content-Type': 'application/octet-stream', ...auth },
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`PUT ${key}: HTTP ${res.status}${refusedHint(res.status, token)}`);
}

async function one(i: number): Promise<void> {
  const r = requests[i]!;
  const started = performance.now();
  try {
    if (r.op === 'write') {
      stats.writes++;
      await write(r.key, r.size);
    } else {
      stats.reads++;
      const res = await fetch(`${base}/${r.key}`, { headers: auth });
      await res.arrayBuffer();
      if (res.status === 200) {
        if (res.headers.get('X-Cache-Tier') === 'edge') stats.edgeHits++;
        else stats.originHits++;
      } else if (res.status === 404) {
        stats.misses++;
        stats.fills++;
        await write(r.key, r.size);
      } else throw new Error(`GET ${r.key}: HTTP ${res.status}${refusedHint(res.status, token)}`);
    }
  } catch (error) {
    stats.errors++;
    if (errorSamples.length < 5) errorSamples.push((error as Error).message);
  }
  latenciesMs.push(performance.now() - started);
}

let next = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: Math.min(concurrency, requests.length) }, async () => {
    while (next < requests.length) await one(next++);
  }),
);
const seconds = (performance.now() - started) / 1000;

const pct = (n: number, d: number) => (d === 0 ? 'n/a' : `${((100 * n) / d).toFixed(1)}%`);
const ms = (v: number) => v.toFixed(2);
process.stdout.write(
  `\nReplay of ${args.trace}\nthrough ${args.edge}, concurrency ${concurrency}\n\n${table(
    ['metric', 'value'],
    [
      ['requests', requests.length],
      ['reads / writes', `${stats.reads} / ${stats.writes}`],
      ['edge hit ratio (of reads)', pct(stats.edgeHits, stats.reads)],
      ['origin store hit ratio (of edge misses)', pct(stats.originHits, stats.reads - stats.edgeHits)],
      ['overall hit ratio (of reads)', pct(stats.edgeHits + stats.originHits, stats.reads)],
      ['misses filled (cache-aside writes)', stats.fills],
      [
        'latency p50 / p95 / p99 (ms)',
        `${ms(percentile(latenciesMs, 50))} / ${ms(percentile(latenciesMs, 95))} / ${ms(percentile(latenciesMs, 99))}`,
      ],
      ['throughput (req/s)', (requests.length / seconds).toFixed(0)],
      ['errors', stats.errors],
    ],
  )}\n`,
);
if (errorSamples.length > 0) process.stdout.write(`\nfirst errors:\n  ${errorSamples.join('\n  ')}\n`);
process.exitCode = stats.errors === 0 ? 0 : 1;
