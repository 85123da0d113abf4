export type { BenchRow } from './load.ts';

import { type BenchRow, fmt, load } from './load.ts';
import { startProcess } from './procs.ts';
import { percentile } from './trace.ts';

/**
 * (a) Edge hit path vs a bare Hono route on the same runtime, (b) coalescing
 * of 1,000 concurrent cold GETs, (c) purge propagation edge A → edge B,
 * (d) edge peak memory (`VmHWM`) against its byte budget. Each server runs in its own
 * process so its CPU time can be read from /proc.
 */
export async function edgeBenchmarks(options: {
  durationSeconds: number;
  connections: number;
  /** Which of a–d to run (default all). */
  sections?: string;
}): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const want = (section: string) => !options.sections || options.sections.includes(section);
  const valueBytes = 1024;
  const origin = await startProcess('origin/main.ts', 'ORIGIN_PORT');
  const edge = await startProcess('edge/adapters/node/main.ts', 'EDGE_PORT', {
    ORIGIN_URL: origin.url,
    EDGE_MAX_TTL_SECONDS: '3600',
  });
  const edgeB = await startProcess('edge/adapters/node/main.ts', 'EDGE_PORT', {
    ORIGIN_URL: origin.url,
    EDGE_MAX_TTL_SECONDS: '3600',
  });
  const bare = await startProcess('bench/bare-hono.ts', 'BARE_PORT', { BARE_VALUE_BYTES: String(valueBytes) });
  try {
    if (want('a')) {
      // (a) hit path
      await fetch(`${origin.url}/api/v1/cache/bench/hot?ttl=3600`, { method: 'PUT', body: new Uint8Array(valueBytes) });
      const warm = await fetch(`${edge.url}/api/v1/cache/bench/hot`);
      await warm.arrayBuffer();
      const baseline = await load(`${bare.url}/api/v1/cache/bench/hot`, bare, options);
      const hit = await load(`${edge.url}/api/v1/cache/bench/hot`, edge, options);
      const ratio = hit.rps / baseline.rps;
      rows.push({
        benchmark: '(a) edge hit path, 1 KiB value',
        subject: `${fmt(hit.rps)} req/s, p99 ${fmt(hit.p99Ms, 1)} ms, ${fmt(hit.cpuUsPerReq, 1)} µs CPU/req, ${hit.errors} errors`,
        baseline: `bare Hono: ${fmt(baseline.rps)} req/s, p99 ${fmt(baseline.p99Ms, 1)} ms, ${fmt(baseline.cpuUsPerReq, 1)} µs CPU/req`,
        result: `${fmt(100 * ratio, 1)}% of bare route`,
        target: '≥ 80% of bare route',
        met: ratio >= 0.8 ? 'yes' : 'no',
      } as BenchRow);
    }

    if (want('b')) {
      // (b) coalescing
      await fetch(`${origin.url}/api/v1/cache/bench/cold?ttl=3600`, { method: 'PUT', body: 'cold value' });
      const originGets = async () => {
        const text = await (await fetch(`${origin.url}/metrics`)).text();
        const line = text
          .split('\n')
          .find(
            (l) =>
              l.startsWith('strata_requests_total{') && l.includes('operation="get"') && l.includes('result="hit"'),
          );
        return Number(line?.split(' ').pop() ?? 0);
      };
      const before = await originGets();
      const results = await Promise.all(
        Array.from({ length: 1000 }, async () => {
          const res = await fetch(`${edge.url}/api/v1/cache/bench/cold`);
          return res.status === 200 && (await res.text()) === 'cold value';
        }),
      );
      const originRequests = (await originGets()) - before;
      rows.push({
        benchmark: '(b) coalescing: 1,000 concurrent GETs of one cold key',
        subject: `${originRequests} origin request(s); ${results.filter(Boolean).length}/1000 correct answers`,
        baseline: 'without coalescing: 1,000 origin requests',
        result: `${originRequests}`,
        target: 'exactly 1',
        met: originRequests === 1 ? 'yes' : 'no',
      } as BenchRow);
    }

    if (want('c')) {
      // (c) purge propagation: write at A, poll B until it serves the new value.
      const key = 'propagate';
      await fetch(`${edge.url}/api/v1/cache/bench/${key}`, { method: 'PUT', body: 'v0' });
      await (await fetch(`${edgeB.url}/api/v1/cache/bench/${key}`)).text();
      const propagation: number[] = [];
      const roundTrip: number[] = [];
      for (let i = 1; i <= 1000; i++) {
        const t0 = performance.now();
        const put = await fetch(`${edge.url}/api/v1/cache/bench/${key}`, { method: 'PUT', body: `v${i}` });
        await put.arrayBuffer();
        for (;;) {
          const body = await (await fetch(`${edgeB.url}/api/v1/cache/bench/${key}`)).text();
          if (body === `v${i}`) break;
        }
        propagation.push(performance.now() - t0);
        // Baseline: the same write and read straight at the origin (no edges, no purge).
        const t1 = performance.now();
        await (
          await fetch(`${origin.url}/api/v1/cache/bench/base?ttl=60`, { method: 'PUT', body: `v${i}` })
        ).arrayBuffer();
        await (await fetch(`${origin.url}/api/v1/cache/bench/base`)).arrayBuffer();
        roundTrip.push(performance.now() - t1);
      }
      const p99 = percentile(propagation, 99);
      rows.push({
        benchmark: '(c) purge propagation: PUT at edge A → edge B serves it (1,000 writes)',
        subject: `p50 ${fmt(percentile(propagation, 50), 2)} ms, p99 ${fmt(p99, 2)} ms, max ${fmt(Math.max(...propagation), 2)} ms`,
        baseline: `PUT + GET at the origin directly: p50 ${fmt(percentile(roundTrip, 50), 2)} ms, p99 ${fmt(percentile(roundTrip, 99), 2)} ms`,
        result: `p99 ${fmt(p99, 2)} ms`,
        target: 'p99 < 20 ms',
        met: p99 < 20 ? 'yes' : 'no',
      } as BenchRow);
    }
  } finally {
    await Promise.all([edge.stop(), edgeB.stop(), bare.stop()]);
    await origin.stop();
  }

  if (want('d')) {
    // (d) memory: fill an edge tier with 4× its budget of distinct values. Raw RSS growth includes
    // garbage not yet collected and allocator slack, so the same traffic also goes through an edge
    // with a 1 MiB budget in the same run; the difference is what the tier itself holds.
    const budget = 32 * 1024 * 1024;
    const valueSize = 64 * 1024;
    const count = Math.ceil((4 * budget) / valueSize);
    const bigOrigin = await startProcess('origin/main.ts', 'ORIGIN_PORT', {
      MEMORY_STORE_MAX_BYTES: String(8 * budget),
    });
    const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
    try {
      const value = new Uint8Array(valueSize);
      for (let i = 0; i < count; i++) {
        value[0] = i & 0xff;
        await (
          await fetch(`${bigOrigin.url}/api/v1/cache/mem/k${i}?ttl=3600`, { method: 'PUT', body: value })
        ).arrayBuffer();
      }
      const growthWith = async (edgeBudget: number, gcEvery = '0') => {
        const edge = await startProcess(
          'bench/edge-with-gc.ts',
          'EDGE_PORT',
          {
            ORIGIN_URL: bigOrigin.url,
            EDGE_MAX_BYTES: String(edgeBudget),
            EDGE_MAX_TTL_SECONDS: '3600',
            EDGE_GC_EVERY_BYTES: gcEvery,
          },
          ['--expose-gc'],
        );
        try {
          await (await fetch(`${edge.url}/api/v1/cache/mem/k0`)).arrayBuffer();
          const liveBefore = await edge.collectGarbage();
          const before = edge.rssBytes();
          // The peak (VmHWM) is the kernel's own high-water mark: it includes every transient body
          // the run allocated, whether or not it was collected later. No collection is forced during the run.
          const peakBefore = edge.peakRssBytes();
          const cpuBefore = edge.cpuSeconds();
          for (let i = 0; i < count; i += 8) {
            await Promise.all(
              Array.from({ length: Math.min(8, count - i) }, async (_, j) => {
                await (await fetch(`${edge.url}/api/v1/cache/mem/k${i + j}`)).arrayBuffer();
              }),
            );
          }
          const peak = edge.peakRssBytes();
          const cpuUsPerRead = ((edge.cpuSeconds() - cpuBefore) * 1e6) / count;
          const growth = edge.rssBytes() - before;
          const ready = (await (await fetch(`${edge.url}/ready`)).json()) as { bytes: number; entries: number };
          const liveGrowth = (await edge.collectGarbage()) - liveBefore;
          const atPeak = edge.memoryAtPeak() as PeakSample;
          return {
            growth,
            peakBefore,
            peak,
            peakGrowth: peak - peakBefore,
            liveGrowth,
            atPeak,
            rssBefore: before,
            cpuUsPerRead,
            ...ready,
          };
        } finally {
          await edge.stop();
        }
      };
      // As shipped (no paced collections), then with EDGE_GC_EVERY_BYTES=auto, the opt-in pace.
      const full = await growthWith(budget);
      const paced = await growthWith(budget, 'auto');
      const tiny = await growthWith(1024 * 1024);
      // Where the peak is: the edge's own sample at its highest RSS (ArrayBuffer backing stores hold
      // the values and socket reads outside the V8 heap; the heap's young generation grows under load).
      const breakdown = ({ atPeak: p, maxArrayBuffers }: PeakSample, rssBefore: number) =>
        `highest sampled RSS ${mib(p.rss - rssBefore)} MiB over the idle RSS; at that sample ArrayBuffers ${mib(p.arrayBuffers)} MiB (most during the run ${mib(maxArrayBuffers)} MiB), V8 heap ${mib(p.heapTotal)} MiB (new space ${mib(p.newSpace)} MiB)`;
      const pace = ({ collectEveryBytes: every }: PeakSample) =>
        every > 0 ? `a full collection every ${mib(every)} MiB of origin bodies` : 'no paced collections';
      // "Peak RSS ≤ budget + 20%" is read as growth over the idle process: the peak (VmHWM) after
      // the run minus the same edge's VmHWM before it (runtime, code and heap of an idle edge).
      const baseline = `same traffic, 1 MiB budget: VmHWM growth ${mib(tiny.peakGrowth)} MiB, RSS growth ${mib(tiny.growth)} MiB, live +${mib(tiny.liveGrowth)} MiB; ${breakdown(tiny.atPeak, tiny.rssBefore)}; edge CPU ${fmt(tiny.cpuUsPerRead, 0)} µs per read; ${pace(tiny.atPeak)}`;
      for (const [label, run] of [
        ['as shipped', full],
        ['EDGE_GC_EVERY_BYTES=auto', paced],
      ] as const)
        rows.push({
          benchmark: `(d) edge peak RSS, ${label}: ${mib(count * valueSize)} MiB of distinct values through a ${mib(budget)} MiB edge`,
          subject: `VmHWM ${mib(run.peak)} MiB (idle ${mib(run.peakBefore)} MiB, growth ${mib(run.peakGrowth)} MiB); RSS growth at the end ${mib(run.growth)} MiB; live heap + buffers after GC +${mib(run.liveGrowth)} MiB; tier ${run.entries} entries, ${mib(run.bytes)} MiB counted; ${breakdown(run.atPeak, run.rssBefore)}; edge CPU ${fmt(run.cpuUsPerRead, 0)} µs per read; ${pace(run.atPeak)}`,
          baseline,
          result: `peak growth ${fmt((100 * run.peakGrowth) / budget, 0)}% of budget; live ${fmt((100 * run.liveGrowth) / budget, 0)}%`,
          target: 'peak growth ≤ budget + 20%',
          met: run.peakGrowth <= budget * 1.2 ? 'yes' : 'no',
        } as BenchRow);
    } finally {
      await bigOrigin.stop();
    }
  }
  return rows;
}

/** What `bench/edge-with-gc.ts` reports about its peak (bytes). */
interface PeakSample {
  atPeak: { rss: number; heapTotal: number; heapUsed: number; newSpace: number; arrayBuffers: number };
  maxArrayBuffers: number;
  /** The edge's pace of full collections (`EDGE_GC_EVERY_BYTES`), 0 when off. */
  collectEveryBytes: number;
}
