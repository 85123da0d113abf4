import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { createParser } from 'eventsource-parser';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { defaultPurgeLogKey } from '../origin/purge/redis-stream-bus.ts';
import { redisStore } from '../origin/store/redis.ts';
import { waitFor } from '../scripts/lib/proc.ts';
import { type Rig, rigLatencyMs, startRig } from '../scripts/lib/rig.ts';
import { type BenchRow, fmt } from './load.ts';
import { percentile } from './trace.ts';

const text = new TextEncoder();
const summary = (ms: number[]) => `p50 ${fmt(percentile(ms, 50), 1)} ms, p99 ${fmt(percentile(ms, 99), 1)} ms`;
const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;

/** GET at an edge: status, `X-Cache` and body. */
async function edgeGet(
  url: string,
  token: string,
  path: string,
): Promise<{ status: number; cache: string | null; body: string }> {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, cache: res.headers.get('X-Cache'), body: await res.text() };
}

/**
 * Reads at `edge` until it answers `body` from its own tier (`X-Cache: HIT`);
 * `reseed`, when given, writes the copy again whenever the edge finds none
 * (404) and tells the caller it did.
 */
async function prime(
  edge: string,
  token: string,
  path: string,
  body: string,
  reseed?: () => Promise<unknown>,
): Promise<void> {
  let last = '';
  await waitFor(
    `${edge} to hold ${path}`,
    async () => {
      const got = await edgeGet(edge, token, path);
      last = `${got.status} ${got.cache} ${got.body.slice(0, 80)}`;
      if (got.status === 404 && reseed) await reseed();
      return got.cache === 'HIT' && got.body === body;
    },
    10_000,
    1,
  ).catch((error: Error) => {
    throw new Error(`${error.message} (last answer: ${last})`);
  });
}

/**
 * Follows a Server-Sent Events stream (bearer token) and calls `onEvent` with
 * the `id` of each event of type `type` (its data for untyped `message`
 * events: the bare relay's, whose data is the write's tag) and the
 * wall-clock ms (sub-ms) it arrived.
 * Returns what stops it.
 */
function followEvents(
  url: string,
  token: string,
  type: string,
  onEvent: (value: string, at: number) => void,
): () => void {
  const controller = new AbortController();
  const parser = createParser({
    onEvent: (event) => {
      const value = type === 'message' ? event.data : event.id;
      if ((event.event ?? 'message') !== type || !value) return;
      onEvent(value, performance.timeOrigin + performance.now());
    },
  });
  void (async () => {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${token}` },
      signal: controller.signal,
    });
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
      parser.feed(decoder.decode(chunk, { stream: true }));
  })().catch(() => {});
  return () => controller.abort();
}

/**
 * The bare relay's two processes (`bench/bare-relay.ts`), started and ready:
 * the write's URL (region a's side), the event stream's (region b's side),
 * and `stop`, which kills both.
 */
async function startBareRelay(rig: Rig): Promise<{ write: string; events: string; stop: () => void }> {
  const listen = async (region: string) => {
    const res = await fetch(`${rig.state.toxiproxyUrl}/proxies/kafka-${region}`);
    return ((await res.json()) as { listen: string }).listen;
  };
  const children: ChildProcess[] = [];
  const ports: Record<string, number> = {};
  const stop = () => {
    for (const child of children) child.kill('SIGKILL');
  };
  try {
    for (const [mode, region] of [
      ['apply', 'b'],
      ['forward', 'a'],
    ] as const) {
      const child = spawn(
        process.execPath,
        [
          fileURLToPath(new URL('./bare-relay.ts', import.meta.url)),
          mode,
          rig.state.regions[region]!.redis.REDIS_URL!,
          await listen(region),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`bare relay (${mode}) not ready in 60 s`)), 60_000);
        child.once('exit', (code) => reject(new Error(`bare relay (${mode}) exited with ${code}`)));
        child.stdout!.on('data', (chunk: Buffer) => {
          const ready = /ready (\d+)/.exec(chunk.toString());
          if (ready) {
            ports[mode] = Number(ready[1]);
            clearTimeout(timer);
            resolve();
          }
        });
      });
    }
  } catch (error) {
    stop();
    throw error;
  }
  return { write: `http://127.0.0.1:${ports.forward}/`, events: `http://127.0.0.1:${ports.apply}/`, stop };
}

/**
 * The scheduler's account of a process (all its threads, Linux
 * `/proc/PID/task/TID/schedstat`): ns on a core, ns runnable but waiting for
 * one, and how many times it was given a core. Null once it is gone.
 */
function schedStat(pid: number): { runNs: number; waitNs: number; slices: number } | null {
  try {
    const total = { runNs: 0, waitNs: 0, slices: 0 };
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const [run, wait, slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ');
      total.runNs += Number(run);
      total.waitNs += Number(wait);
      total.slices += Number(slices);
    }
    return total;
  } catch {
    return null;
  }
}

/** An origin's `strata_invalidation_apply_seconds{source="kafka"}`, cumulative: count, sum (s) and bucket counts by bound (s). */
interface ApplyTimes {
  readonly count: number;
  readonly sum: number;
  readonly buckets: ReadonlyMap<number, number>;
}

/**
 * What Node's default metrics (prom-client) say of a process since the last
 * scrape: event loop delay p99 and max (ms) and major GC time (ms, cumulative);
 * and, on an origin, how long its applies of Kafka events took.
 */
async function processStalls(
  url: string,
  token: string,
): Promise<{ lagP99: number; lagMax: number; majorGcMs: number; apply: ApplyTimes } | null> {
  const text = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
    .then((r) => r.text())
    .catch(() => '');
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
  const lagP99 = value(/^nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})? (\S+)/m) * 1000;
  if (Number.isNaN(lagP99)) return null;
  return {
    lagP99,
    lagMax: value(/^nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)/m) * 1000,
    // prom-client shows a GC kind only once one ran.
    majorGcMs: (Number(/^nodejs_gc_duration_seconds_sum\{[^}]*kind="major"[^}]*\} (\S+)/m.exec(text)?.[1]) || 0) * 1000,
    apply: {
      count: value(/^strata_invalidation_apply_seconds_count\{[^}]*source="kafka"[^}]*\} (\S+)/m) || 0,
      sum: value(/^strata_invalidation_apply_seconds_sum\{[^}]*source="kafka"[^}]*\} (\S+)/m) || 0,
      buckets: new Map(
        [...text.matchAll(/^strata_invalidation_apply_seconds_bucket\{([^}]*)\} (\S+)/gm)]
          .filter((m) => m[1]!.includes('source="kafka"'))
          .map((m) => [Number(/le="([^"]+)"/.exec(m[1]!)?.[1]), Number(m[2])] as const),
      ),
    },
  };
}

/**
 * Region b's applies of Kafka events over the writes, from its origins'
 * `strata_invalidation_apply_seconds` (the store purge and the purge log
 * append): how many, the mean, and the share within each bucket bound.
 */
function applyTimes(before: readonly (ApplyTimes | undefined)[], after: readonly (ApplyTimes | undefined)[]): string {
  let count = 0;
  let sum = 0;
  const within = new Map<number, number>();
  after.forEach((a, i) => {
    if (!a) return;
    const b = before[i];
    count += a.count - (b?.count ?? 0);
    sum += a.sum - (b?.sum ?? 0);
    for (const [le, n] of a.buckets) within.set(le, (within.get(le) ?? 0) + n - (b?.buckets.get(le) ?? 0));
  });
  if (count === 0) return "b's applies of Kafka events: none timed";
  const shares = [0.001, 0.0025, 0.005, 0.01, 0.025]
    .map((le) => `≤ ${le * 1000} ms ${fmt((100 * (within.get(le) ?? 0)) / count, 1)}%`)
    .join(', ');
  return `b's applies of Kafka events (store purge + log append, its origins' own timing): ${count}, mean ${fmt((sum / count) * 1000, 2)} ms; ${shares}`;
}

/** kafkajs's `ConfigResourceTypes.TOPIC` (the enum is not an ES module export of the CommonJS package). */
const topicResource = 2;

type StreamEntry = [id: string, fields: string[]];

/** The newest purge log entry (not an intent) of `redis` that `match` accepts: its stream id and decoded fields. */
async function newestLogEntry(
  redis: Redis,
  match: (data: { namespace?: string; origin_region?: string }) => boolean,
): Promise<{ id: string; inc: string; closes: string | null } | null> {
  const entries = (await redis.xrevrange(`${defaultPurgeLogKey}:stream`, '+', '-', 'COUNT', 10)) as StreamEntry[];
  for (const [id, list] of entries) {
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < list.length; i += 2) fields.set(list[i]!, list[i + 1]!);
    if (fields.get('intent') === '1') continue;
    if (match(JSON.parse(fields.get('data') ?? '{}')))
      return { id, inc: fields.get('inc') ?? '', closes: fields.get('closes') ?? null };
  }
  return null;
}

/** A stream id's time: the ms its entry was appended (Redis's clock; one machine here). */
const streamMs = (id: string) => Number(id.split('-')[0]);

/**
 * Where one write's cross-region purge spent its time, ms, on the machine's
 * clock: PUT answered (region a's log append inside it), a's log → the
 * broker's append (the record's LogAppendTime: the forwarder's read and the
 * produce request's way through a's proxy), that append → b's apply starts
 * (the fetch answer's way through b's proxy, plus any wait for a fetch to be
 * outstanding at the broker, plus decoding; marked by the intent b logs
 * first where it logs one, else this leg runs to b's purge entry and holds
 * the apply too), that intent → b's purge entry (b's store purge and log
 * append), b's log → b's edges purged.
 */
interface Stages {
  ack: number;
  forward: number;
  fetch: number;
  apply: number;
  relay: number;
  /** Of `relay`, for b's edge purged last: b's log → its origin's purge stream event reaching a listener. */
  tail: number;
  /** That event → the first GET that edge answered without its copy was sent. */
  edge: number;
  /** That GET's answer (a miss to b's origin) → received: not part of the purge, part of `relay`. */
  refill: number;
  /** PUT sent → b's purge stream event at a listener (the stretch the bare relay anchors). */
  logs: number;
}

/**
 * (l) A write acknowledged in region A until every edge of both regions has
 * dropped its copy: per write, the time from the PUT at an origin of A to the
 * last of the four edges dropping the value it held, counted when the first
 * GET that edge answered with something else (A's edges: the new value; B's:
 * a miss, since values never cross) was sent; the same writes counted when
 * that answer arrived (a miss's refill from the region's origin added) are
 * shown beside. B's copy
 * is written into B's Redis directly before each write (no purge of its own).
 * The same writes give the in-region figure (A's two edges only) as baseline.
 */
async function crossRegionPurge(rig: Rig, writes: number, pollMs: number): Promise<BenchRow> {
  const { token, regions } = rig.state;
  const a = regions.a!;
  const b = regions.b!;
  const storeB = redisStore({ url: b.redis.REDIS_URL });
  const logA = new Redis(a.redis.REDIS_URL!);
  const logB = new Redis(b.redis.REDIS_URL!);
  // Reads the shared topic directly (no proxy) for each record's timestamp: when the broker appended it.
  const sentAt = new Map<string, number>();
  /** Every record the tap read: its append time, partition and source region (for the blind-window attribution). */
  const records: { id: string; ts: number; region: string }[] = [];
  const kafka = new Kafka({ brokers: [rig.state.kafka], clientId: 'bench-regions', logLevel: logLevel.NOTHING });
  const topic = 'cache.invalidation'; // the rig's KAFKA_INVALIDATION_TOPIC (the default)
  const tap = kafka.consumer({ groupId: `bench-regions-${Date.now()}`, maxWaitTimeInMs: 100 });
  const stageOf: {
    eventId: string;
    t0: number;
    ackAt: number;
    aLog: number;
    bIntent: number;
    bLog: number;
    bEdges: number;
    /** The purge stream event of b's last edge's origin: wall ms it reached the bench's listener (NaN: not seen). */
    bStream: number;
    /** Wall ms that edge's first fresh GET was sent. */
    bEdgeSent: number;
  }[] = [];
  /** Per origin of b: when each purge (by stream id) reached the bench's listener of its purge stream. */
  const streamAt = b.origins.map(() => new Map<string, number>());
  const stopStreams = b.origins.map((origin, n) =>
    followEvents(`${origin}/api/v1/purge/stream`, token, 'purge', (position, at) => {
      // A position's offset is its purge log entry's stream id.
      const id = position.split(':').pop()!;
      if (!streamAt[n]!.has(id)) streamAt[n]!.set(id, at);
    }),
  );
  const path = '/api/v1/cache/bench-xr/k';
  const put = async (value: string) => {
    const res = await fetch(`${a.origins[0]}${path}?ttl=3600`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}` },
      body: value,
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`PUT in region a answered ${res.status}`);
  };
  /** The anchor: after each write, one write through the bare relay until its event reached a listener, ms. */
  const bare: number[] = [];
  let bareRelay: Awaited<ReturnType<typeof startBareRelay>> | undefined;
  let stopBareEvents = () => {};
  /** Each bare event's data → when it reached the bench's listener (wall ms). */
  const bareArrived = new Map<string, number>();
  let bareWake = () => {};
  /** POSTs `tag` to the bare relay's write and waits until its event reached the bench's listener: ms. */
  const bareOnce = async (tag: string): Promise<number> => {
    const t0 = performance.timeOrigin + performance.now();
    const res = await fetch(bareRelay!.write, { method: 'POST', body: tag });
    await res.arrayBuffer();
    if (res.status !== 204) throw new Error(`the bare relay's write answered ${res.status}`);
    const deadline = Date.now() + 10_000;
    while (!bareArrived.has(tag)) {
      if (Date.now() > deadline) throw new Error(`the bare relay did not carry ${tag} within 10 s`);
      await new Promise<void>((resolve) => {
        bareWake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return bareArrived.get(tag)! - t0;
  };
  const all: number[] = [];
  /** The same writes, each edge counted when its first answer without its copy arrived (a miss's refill included). */
  const answered: number[] = [];
  const inRegion: number[] = [];
  /** Each origin's and edge's event loop delay and major GC time over the writes (their own metrics). */
  let stalls = '';
  /** What the scheduler says of every process over the writes (`/proc/PID/task/TID/schedstat`). */
  let sched = '';
  // The bench's own event loop times every detection: its delays are part of each figure, so they are shown.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  let reseeds = 0;
  const seedB = (value: string) =>
    storeB.set('bench-xr', 'k', { value: text.encode(value), contentType: 'text/plain', ttlMs: 3_600_000, tags: [] });
  try {
    // The broker stamps each record when it appends it (LogAppendTime): splits the Kafka leg at the broker.
    const admin = kafka.admin();
    await admin.connect();
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: topicResource,
          name: topic,
          configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
        },
      ],
    });
    await admin.disconnect();
    let tapJoined = false;
    tap.on(tap.events.GROUP_JOIN, () => {
      tapJoined = true;
    });
    await tap.connect();
    await tap.subscribe({ topic, fromBeginning: false });
    await tap.run({
      eachMessage: async ({ message }) => {
        const { id, origin_region } = JSON.parse(message.value?.toString() ?? '{}') as {
          id?: string;
          origin_region?: string;
        };
        if (id) sentAt.set(id, Number(message.timestamp));
        if (id) records.push({ id, ts: Number(message.timestamp), region: origin_region ?? 'none' });
      },
    });
    // The first write's purge must have crossed before B's copy for the first measured write goes in.
    await seedB('b0');
    for (const edge of b.edges) await prime(edge, token, path, 'b0');
    await put('a0');
    await waitFor('the bench consumer to join', async () => tapJoined, 30_000, 20);
    for (const edge of b.edges)
      await waitFor(
        'the first purge in region b',
        async () => (await edgeGet(edge, token, path)).body !== 'b0',
        30_000,
        5,
      );
    bareRelay = await startBareRelay(rig);
    stopBareEvents = followEvents(bareRelay.events, token, 'message', (data, at) => {
      bareArrived.set(data, at);
      bareWake();
    });
    for (let i = 0; i < 5; i++) await bareOnce(`warm-up ${i}`);
    // A scrape starts each process's event loop delay window afresh (prom-client resets it when collected).
    const processes = [...a.origins, ...a.edges, ...b.origins, ...b.edges];
    const names = ['origin a1', 'origin a2', 'edge a1', 'edge a2', 'origin b1', 'origin b2', 'edge b1', 'edge b2'];
    const gcBefore = await Promise.all(processes.map((url) => processStalls(url, token)));
    // Every process of the rig and the bench itself (its anchor's two processes only run between writes).
    const scheduled = [...rig.state.pids, { name: 'bench', pid: process.pid }];
    const schedBefore = scheduled.map(({ pid }) => schedStat(pid));
    const writesStart = performance.now();
    loopDelay.enable();
    for (let i = 1; i <= writes; i++) {
      const held = `b${i}`;
      await seedB(held);
      const before = new Map<string, string>([
        ...a.edges.map((e) => [e, `a${i - 1}`] as const),
        ...b.edges.map((e) => [e, held] as const),
      ]);
      // Delivery is at least once: an earlier write's purge applied again in b (after a consumer group
      // rebalance) removes b's copy, which has no purge log entry of its own; it is then written again.
      const reseed = async () => {
        reseeds += 1;
        await seedB(held);
      };
      for (const [edge, body] of before)
        await prime(edge, token, path, body, b.edges.includes(edge) ? reseed : undefined).catch((error: Error) => {
          const where = b.edges.includes(edge) ? `region b (${reseeds} copies written again so far)` : 'region a';
          throw new Error(`write ${i}, an edge of ${where}: ${error.message}`);
        });
      const t0 = performance.now();
      const wall0 = performance.timeOrigin + t0;
      await put(`a${i}`);
      const ackAt = performance.timeOrigin + performance.now();
      // Per edge: when the first GET answered without the edge's copy was sent, and when its answer arrived. The
      // edge had dropped its copy by the time it handled that GET, and still held it when it handled the GET
      // before (whose answer arrived before this one was sent): the send time places the purge within one
      // GET's way there plus one rest. The answer arrives later by a miss's refill from the region's origin.
      const detected = await Promise.all(
        [...before].map(async ([edge, old]) => {
          // A GET, then `pollMs` of rest. Polling back to back kept both cores busy for the whole wait and slowed
          // the very purge it timed.
          for (;;) {
            const sent = performance.now() - t0;
            if ((await edgeGet(edge, token, path)).body !== old) return { sent, answered: performance.now() - t0 };
            if (pollMs > 0) await new Promise((r) => setTimeout(r, pollMs));
          }
        }),
      );
      const purgedAfter = detected.map((d) => d.sent);
      all.push(Math.max(...purgedAfter));
      answered.push(Math.max(...detected.map((d) => d.answered)));
      inRegion.push(Math.max(...purgedAfter.slice(0, a.edges.length)));
      const inA = await newestLogEntry(logA, (d) => d.namespace === 'bench-xr' && d.origin_region === undefined);
      const inB = await newestLogEntry(logB, (d) => d.namespace === 'bench-xr' && d.origin_region === 'a');
      // b's apply logs an intent before its store purge; the purge entry names it (`closes`).
      if (inA && inB) {
        const inBEdges = detected.slice(a.edges.length);
        const last = inBEdges.reduce((worst, d, n) => (d.answered > inBEdges[worst]!.answered ? n : worst), 0);
        stageOf.push({
          eventId: `a:${inA.inc}:${inA.id}`,
          t0: wall0,
          ackAt,
          aLog: streamMs(inA.id),
          // b logs an intent before applying only an event its source would not deliver again (not Kafka's).
          bIntent: inB.closes ? streamMs(inB.closes) : Number.NaN,
          bLog: streamMs(inB.id),
          bEdges: wall0 + inBEdges[last]!.answered,
          bStream: streamAt[last]!.get(inB.id) ?? Number.NaN,
          bEdgeSent: wall0 + inBEdges[last]!.sent,
        });
      }
      bare.push(await bareOnce(`${i}`));
    }
    loopDelay.disable();
    const writesMs = performance.now() - writesStart;
    const schedAfter = scheduled.map(({ pid }) => schedStat(pid));
    let allRun = 0;
    let allWait = 0;
    const perProcess = scheduled.map(({ name }, i) => {
      const [before, after] = [schedBefore[i], schedAfter[i]];
      if (!before || !after) return `${name}: gone`;
      const run = (after.runNs - before.runNs) / 1e6;
      const wait = (after.waitNs - before.waitNs) / 1e6;
      const slices = after.slices - before.slices;
      allRun += run;
      allWait += wait;
      return `${name} ${fmt((run / writesMs) * 100, 1)}% of a core, ${fmt(slices ? wait / slices : 0, 2)} ms waited per run`;
    });
    sched = `over the writes (${fmt(writesMs / 1000, 1)} s): cores busy ${fmt(allRun / writesMs, 2)} of 2; threads runnable but waiting for a core, summed, ${fmt(allWait / writesMs, 2)} core-equivalents; ${perProcess.join('; ')}`;
    const gcAfter = await Promise.all(processes.map((url) => processStalls(url, token)));
    stalls = processes
      .map((url, i) => {
        const after = gcAfter[i];
        if (!after) return `${names[i] ?? url}: no metrics`;
        const major = after.majorGcMs - (gcBefore[i]?.majorGcMs ?? 0);
        return `${names[i] ?? url} loop delay p99 ${fmt(after.lagP99, 1)} / max ${fmt(after.lagMax, 1)} ms, major GC ${fmt(major, 1)} ms`;
      })
      .join('; ');
    const bOrigins = [4, 5];
    stalls += `\n${applyTimes(
      bOrigins.map((i) => gcBefore[i]?.apply),
      bOrigins.map((i) => gcAfter[i]?.apply),
    )}`;
    await waitFor(
      'the bench to see every forwarded event',
      async () => stageOf.every((s) => sentAt.has(s.eventId)),
      10_000,
      50,
    ).catch(() => {});
  } finally {
    for (const stop of stopStreams) stop();
    stopBareEvents();
    bareRelay?.stop();
    await tap.disconnect().catch(() => {});
    logA.disconnect();
    logB.disconnect();
    await storeB.close();
  }
  const seen = stageOf.filter((s) => sentAt.has(s.eventId));
  // A fetch answer leaves b's consumer without a fetch at the broker for about one round trip plus its handling:
  // a write whose event was appended within that long after another record may have waited for the next fetch.
  const blindMs = 3 * rigLatencyMs;
  const precededBy = (s: (typeof seen)[number]) => {
    const at = sentAt.get(s.eventId)!;
    return records.filter((r) => r.id !== s.eventId && r.ts <= at && r.ts > at - blindMs);
  };
  const stages: (Stages & { before: { region: string }[] })[] = seen.map((s) => ({
    before: precededBy(s),
    ack: s.ackAt - s.t0,
    forward: sentAt.get(s.eventId)! - s.aLog,
    fetch: (Number.isNaN(s.bIntent) ? s.bLog : s.bIntent) - sentAt.get(s.eventId)!,
    apply: s.bLog - s.bIntent,
    relay: s.bEdges - s.bLog,
    tail: s.bStream - s.bLog,
    edge: s.bEdgeSent - s.bStream,
    refill: s.bEdges - s.bEdgeSent,
    logs: s.bStream - s.t0,
  }));
  const stage = (name: keyof Stages) => {
    const ms = stages.map((s) => s[name]).filter((m) => !Number.isNaN(m));
    return ms.length > 0 ? summary(ms) : 'not seen';
  };
  const withIntent = stages.filter((s) => !Number.isNaN(s.apply)).length;
  const breakdown = `where the time goes (${stages.length} writes, ms on one clock): PUT answered ${stage('ack')}; a's log → broker append (forwarder's read, produce one way) ${stage('forward')}; broker append → b's apply starts, or b's purge entry where b logged no intent (fetch answer one way, any wait for a fetch at the broker) ${stage('fetch')}; b's apply (intent → purge entry, ${withIntent} writes) ${stage('apply')}; b's log → b's edges purged and answering ${stage('relay')} (for b's edge answering last: b's log → its origin's purge stream event at a listener ${stage('tail')}, → the first GET answered without the copy sent ${stage('edge')}, → that answer received, a miss to b's origin ${stage('refill')})`;
  // Beyond one way through b's proxy plus 10 ms, the event most likely reached the broker while no fetch of b was there.
  const late = stages.filter((s) => s.fetch > rigLatencyMs + 10);
  const onTime = stages.filter((s) => s.fetch <= rigLatencyMs + 10);
  const fromRegion = (list: typeof stages, region: string) =>
    list.filter((s) => s.before.some((r) => r.region === region)).length;
  const attribution = `of those, appended within ${blindMs} ms after another record on the topic: ${late.filter((s) => s.before.length > 0).length} (after one of region a: ${fromRegion(late, 'a')}, of region b: ${fromRegion(late, 'b')}); writes on time that were: ${onTime.filter((s) => s.before.length > 0).length} of ${onTime.length}`;
  // A forward leg beyond one way through a's proxy plus 10 ms waited before its produce left (a produce in flight
  // on its producer, the forwarder's read); how many followed one of region a's other records (canaries) closely.
  const slowForward = stages.filter((s) => s.forward > rigLatencyMs + 10);
  const forwardAttribution = `a's log → broker append over ${rigLatencyMs + 10} ms: ${slowForward.length} of ${stages.length} writes, of those appended within ${blindMs} ms after another of region a's records: ${slowForward.filter((s) => s.before.some((r) => r.region === 'a')).length}`;
  process.stdout.write(
    `${breakdown}; broker append → b's apply over ${rigLatencyMs + 10} ms: ${late.length} of ${stages.length} writes, ${attribution}; ${forwardAttribution}; b's copy written again before a write (a purge delivered again): ${reseeds} times; the bench's own event loop delay p99 ${fmt(loopDelay.percentile(99) / 1e6, 1)} ms, max ${fmt(loopDelay.max / 1e6, 1)} ms\nprocesses during the writes (their own metrics): ${stalls}\nthe scheduler ${sched}\n`,
  );
  const rttMs = 2 * rigLatencyMs;
  const p99 = percentile(all, 99);
  return {
    benchmark: `(l) in the rig (${rttMs} ms RTT between regions): PUT in region a → all 4 edges of both regions purged (${writes} writes, each edge polled every ${pollMs} ms)`,
    subject: `${summary(all)}, max ${fmt(Math.max(...all), 1)} ms (counted at each edge's first answer received, a miss's refill included: ${summary(answered)})`,
    baseline: `bare relay (write → a's Redis stream → plain kafkajs producer → broker → plain consumer → b's Redis stream → event at a listener; one after each write): ${summary(bare)}, beside Strata's PUT → b's purge stream event at a listener ${stage('logs')}; region a's own 2 edges, same writes: ${summary(inRegion)}; published: Cloudflare Instant Purge < 150 ms p50 globally, Fastly ≈ 150 ms`,
    result: `p99 ${fmt(p99, 1)} ms`,
    target: `p99 ≤ RTT + 20 ms = ${rttMs + 20} ms`,
    met: p99 <= rttMs + 20 ? 'yes' : 'no',
  };
}

/** One autocannon run of edge hits; errors count failed connections and non-2xx answers. */
async function hits(
  url: string,
  token: string,
  options: { connections: number; durationSeconds: number },
): Promise<{ rps: number; p99Ms: number; errors: number }> {
  const result = await autocannon({
    url,
    headers: { authorization: `Bearer ${token}` },
    connections: options.connections,
    duration: options.durationSeconds,
  });
  return { rps: result.requests.average, p99Ms: result.latency.p99, errors: result.errors + result.non2xx };
}

/**
 * (m) Region isolation: edge hits in region A (one hot key at an edge of A),
 * three runs with region B healthy, then B's Redis is stopped and three runs
 * more; medians compared. B's origins keep running (their breaker opens,
 * their Kafka consumers retry), sharing the machine with A.
 */
async function regionIsolation(rig: Rig, options: { connections: number; durationSeconds: number }): Promise<BenchRow> {
  const { token, regions } = rig.state;
  const a = regions.a!;
  const b = regions.b!;
  const path = '/api/v1/cache/bench-iso/hot';
  const res = await fetch(`${a.origins[0]}${path}?ttl=3600`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}` },
    body: 'x'.repeat(512),
  });
  await res.arrayBuffer();
  await prime(a.edges[0]!, token, path, 'x'.repeat(512));
  const url = `${a.edges[0]}${path}`;
  // Warm-up, not counted.
  await hits(url, token, { ...options, durationSeconds: 1 });
  const healthy = [];
  for (let i = 0; i < 3; i++) healthy.push(await hits(url, token, options));
  await rig.redis.b!.stop();
  // B notices: its origins answer /ready 503 once their store is unreachable.
  await waitFor(
    "region b's origins to see their Redis gone",
    async () => (await fetch(`${b.origins[0]}/ready`).catch(() => null))?.status !== 200,
    30_000,
    100,
  );
  const stopped = [];
  for (let i = 0; i < 3; i++) stopped.push(await hits(url, token, options));
  const rpsHealthy = median(healthy.map((r) => r.rps));
  const rpsStopped = median(stopped.map((r) => r.rps));
  const errors = stopped.reduce((n, r) => n + r.errors, 0) + healthy.reduce((n, r) => n + r.errors, 0);
  const ratio = rpsStopped / rpsHealthy;
  return {
    benchmark: `(m) region isolation: edge hits in region a while region b's Redis is stopped (median of 3 runs of ${options.durationSeconds} s, ${options.connections} connections)`,
    subject: `b stopped: ${fmt(rpsStopped)} req/s, p99 ${fmt(median(stopped.map((r) => r.p99Ms)), 1)} ms, ${errors} errors in a`,
    baseline: `b healthy, same run: ${fmt(rpsHealthy)} req/s, p99 ${fmt(median(healthy.map((r) => r.p99Ms)), 1)} ms`,
    result: `${fmt(ratio * 100, 1)}% of healthy throughput`,
    target: 'no errors in a; ≥ 95%',
    met: errors === 0 && ratio >= 0.95 ? 'yes' : 'no',
  };
}

/**
 * (l) and (m) on one rig (`npm run rig`'s start-up, attached to this
 * process, in a temporary folder): two regions × two origins × two edges, a
 * Redis each, one Kafka behind a Toxiproxy proxy per region (+20 ms each way).
 */
export async function regionBenchmarks(options: {
  connections: number;
  durationSeconds: number;
  writes?: number;
  /** Milliseconds between an edge's answer and its next GET while waiting for a purge; 0 = back to back. */
  pollMs?: number;
  /** Settings for every origin of the rig on top of its own (to compare settings on the same benchmark). */
  originEnv?: Record<string, string>;
}): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-rig-'));
  const rig = await startRig({ dir, originEnv: { LOG_LEVEL: 'warn', ...options.originEnv } }).catch(
    (error: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    },
  );
  try {
    const purge = await crossRegionPurge(rig, options.writes ?? 1000, options.pollMs ?? 1);
    const isolation = await regionIsolation(rig, options);
    return [purge, isolation];
  } finally {
    await rig.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
