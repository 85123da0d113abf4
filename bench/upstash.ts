import { type BenchRow, fmt, type LoadResult, load } from './load.ts';
import { startProcess } from './procs.ts';

const describe = (r: LoadResult) =>
  `${fmt(r.rps)} req/s, p99 ${fmt(r.p99Ms, 1)} ms, ${fmt(r.cpuUsPerReq, 1)} µs CPU/req, ${r.errors} errors`;

/**
 * **(w)** An Upstash GET of an edge hit against the edge's own REST GET of
 * the same entry, same edge process, same run, same load generator
 * (autocannon) and connections. The Upstash requests are byte for byte what
 * `@upstash/redis` 1.39.0 sends for `redis.get('hot')`: with its default
 * auto-pipelining a POST of `[["get","hot"]]` to `/pipeline`, without it a
 * POST of `["get","hot"]` to the base URL, both with `Upstash-Encoding:
 * base64`. The cost measured is the protocol's (JSON parse, command run,
 * base64 encode) over the REST route's. Reported; no target.
 */
export async function upstashBenchmarks(options: {
  connections: number;
  durationSeconds: number;
}): Promise<BenchRow[]> {
  const origin = await startProcess('origin/main.ts', 'ORIGIN_PORT');
  const edge = await startProcess('edge/adapters/node/main.ts', 'EDGE_PORT', {
    ORIGIN_URL: origin.url,
    EDGE_MAX_TTL_SECONDS: '3600',
  });
  try {
    await fetch(`${origin.url}/api/v1/cache/bench/hot?ttl=3600`, {
      method: 'PUT',
      body: new Uint8Array(1024).fill(97),
    });
    await (await fetch(`${edge.url}/api/v1/cache/bench/hot`)).arrayBuffer();
    const upstash = (path: string, body: string) => ({
      url: `${edge.url}/upstash/bench${path}`,
      method: 'POST' as const,
      body,
      headers: { 'Content-Type': 'application/json', 'Upstash-Encoding': 'base64' },
    });
    const rest = await load(`${edge.url}/api/v1/cache/bench/hot`, edge, options);
    const piped = await load(upstash('/pipeline', '[["get","hot"]]'), edge, options);
    const single = await load(upstash('', '["get","hot"]'), edge, options);
    const row = (subject: string, r: LoadResult): BenchRow => ({
      benchmark: `(w) Upstash GET of an edge hit, 1 KiB value: ${subject}`,
      subject: describe(r),
      baseline: `REST GET at the same edge: ${describe(rest)}`,
      result: `${fmt((100 * r.rps) / rest.rps, 1)}% of REST req/s`,
      target: 'reported (no target set)',
      met: 'n/a',
    });
    return [row('client default (auto-pipelining, /pipeline)', piped), row('single command (base URL)', single)];
  } finally {
    await edge.stop();
    await origin.stop();
  }
}
