/**
 * Purge propagation benchmark: **produce → all edges purged**, through a real
 * Kafka broker, the origin's consumer group, the purge bus and two edges'
 * purge streams, on loopback (issue 4). `bench/run.ts` calls
 * {@link runPurgeKafkaBench}; `node bench/purge-kafka.ts` runs it alone and
 * prints JSON.
 *
 * Timing: the clock starts just before `producer.send` of the batch that
 * carries an event and stops when the *last* of the two edges has applied
 * the purge message naming the event's key (observed by wrapping
 * `EdgeCache.apply`). Origin, edges and producer share this process and
 * its event loop, so `performance.now()` is one clock; that also means the
 * numbers include their contention for one core.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { ensureTopics } from '../origin/invalidation/kafka-topics.ts';
import { type RunningOrigin, startOrigin } from '../origin/server.ts';
import { startKafka } from '../scripts/services/kafka.ts';
import { originConfigSchema, parseConfig } from '../shared/config.ts';
import type { InvalidationEvent, StreamMessage } from '../shared/schemas.ts';
import { benchEdges } from './edges.ts';
import type { BenchRow } from './load.ts';

/** The p99 bound, milliseconds, under which a rate counts as sustained. */
export const purgeP99TargetMs = 100;

export interface PurgeKafkaBenchOptions {
  /** Kafka bootstrap `host:port`; when absent a throwaway broker is started (and stopped) in a temp folder. */
  readonly brokers?: string;
  /** `REDIS_URL` for the origin's store; the embedded memory store when absent. */
  readonly redisUrl?: string;
  /** Events in the latency run (default 1 000; at least 1 000 for the numbers). */
  readonly events?: number;
  /** Producer rate of the latency run, events/s (default 500). */
  readonly latencyRatePerSec?: number;
  /** Rates tried, ascending, for the throughput search, events/s (default 500 … 16 000). */
  readonly rates?: readonly number[];
  /** Seconds of traffic per throughput step (default 2; each step sends at least 1 000 events). */
  readonly stepSeconds?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

/** One measured run. Latencies in milliseconds, produce → both edges applied. */
export interface PurgeLatencyRow {
  readonly name: string;
  /** Rate asked of the producer, events/s. */
  readonly targetPerSec: number;
  /** Events sent divided by the sending time, events/s. */
  readonly achievedPerSec: number;
  readonly events: number;
  /** Events that did not reach both edges within the run's deadline. */
  readonly lost: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /**
   * Same-run baseline, on the latency row: produce → a bare kafkajs consumer
   * (own group, own topic, run just before) receives, ms; NaN on other rows.
   */
  readonly kafkaP50Ms: number;
  readonly kafkaP99Ms: number;
}

/** What {@link runPurgeKafkaBench} measured. */
export interface PurgeKafkaBenchResult {
  /** The latency run (`events` events at `latencyRatePerSec`). */
  readonly latency: PurgeLatencyRow;
  /** The throughput steps, in the order run; stops after the first step over the bound. */
  readonly steps: readonly PurgeLatencyRow[];
  /** Highest step rate (achieved events/s) whose p99 stayed under {@link purgeP99TargetMs} with nothing lost; 0 if none. */
  readonly sustainedPerSec: number;
  readonly p99TargetMs: number;
  readonly edges: number;
  readonly store: string;
}

/** `q`-quantile (0 < q ≤ 1) of ascending `sorted`, nearest-rank. */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Runs the benchmark: starts (or uses) a broker, an origin consuming a fresh
 * 3-partition topic, and two edges; warms up; then a latency run and a rising
 * ladder of producer rates until p99 exceeds {@link purgeP99TargetMs}.
 * Everything it started is stopped before it resolves.
 *
 * @throws when the broker cannot start, or the consumer does not join within 30 s.
 */
export async function runPurgeKafkaBench(options: PurgeKafkaBenchOptions = {}): Promise<PurgeKafkaBenchResult> {
  const log = options.log ?? (() => {});
  const events = options.events ?? 1_000;
  const latencyRate = options.latencyRatePerSec ?? 500;
  const rates = options.rates ?? [500, 1_000, 2_000, 4_000, 8_000, 16_000];
  const stepSeconds = options.stepSeconds ?? 2;
  const quiet = pino({ level: 'silent' });
  const cleanups: (() => Promise<void>)[] = [];

  try {
    let brokers = options.brokers;
    if (!brokers) {
      const dir = mkdtempSync(join(tmpdir(), 'strata-bench-kafka-'));
      log('starting a Kafka broker');
      const kafka = await startKafka({ dir });
      cleanups.push(async () => {
        await kafka.stop();
        rmSync(dir, { recursive: true, force: true });
      });
      brokers = kafka.brokers;
    }
    const topic = `bench-purge-${randomUUID().slice(0, 8)}`;
    const client = new Kafka({ clientId: 'strata-bench', brokers: [brokers], logLevel: logLevel.NOTHING });
    const admin = client.admin();
    await admin.connect();
    // The baseline runs on its own topic, so the origin never sees its events.
    const baselineTopic = `${topic}-baseline`;
    await ensureTopics(admin, [
      { topic, numPartitions: 3 },
      { topic: baselineTopic, numPartitions: 3 },
    ]);
    await admin.disconnect();

    const origin: RunningOrigin = await startOrigin(
      parseConfig(originConfigSchema, {
        ORIGIN_PORT: '0',
        LOG_LEVEL: 'silent',
        REDIS_URL: options.redisUrl,
        KAFKA_BROKERS: brokers,
        KAFKA_INVALIDATION_TOPIC: topic,
        KAFKA_GROUP_ID: `${topic}-origin`,
        KAFKA_FROM_BEGINNING: 'true',
        KAFKA_SESSION_TIMEOUT_MS: '6000',
        KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
        PURGE_BUFFER_SIZE: '100000',
      }),
      { logger: quiet },
    );
    cleanups.unshift(() => origin.close());
    await origin.invalidations.ready(30_000);

    const edges = await benchEdges(origin.url, 2, quiet, cleanups);
    const deadline = Date.now() + 10_000;
    while (origin.bus.subscribers < edges.length || !edges.every((e) => e.subscription.connected)) {
      if (Date.now() > deadline) throw new Error('edges did not subscribe to the purge stream');
      await new Promise((r) => setTimeout(r, 10));
    }

    // Arrival bookkeeping: key → how many edges applied it, and when the last one did.
    const pending = new Map<string, { sentAt: number; edgesLeft: number; doneAt?: number; kafkaAt?: number }>();

    for (const edge of edges) {
      const apply = edge.cache.apply.bind(edge.cache);
      edge.cache.apply = (message: StreamMessage) => {
        const removed = apply(message);
        if (message.type === 'purge') {
          const at = performance.now();
          for (const key of message.keys) {
            const p = pending.get(key);
            if (p && p.edgesLeft > 0 && --p.edgesLeft === 0) p.doneAt = at;
          }
        }
        return removed;
      };
    }

    const producer: Producer = client.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    cleanups.unshift(() => producer.disconnect());

    // `strata`: produce to the origin's topic, done when both edges applied the purge.
    // `kafka`: the same-run baseline, produce to the baseline topic, done when a bare consumer has it.
    const runAt = async (
      name: string,
      ratePerSec: number,
      count: number,
      path: 'strata' | 'kafka' = 'strata',
    ): Promise<PurgeLatencyRow> => {
      const target = path === 'strata' ? topic : baselineTopic;
      const arrived = (p: { doneAt?: number; kafkaAt?: number } | undefined) =>
        (path === 'strata' ? p?.doneAt : p?.kafkaAt) !== undefined;
      const keys = Array.from({ length: count }, (_, i) => `${name}:${i}`);
      const sends: Promise<unknown>[] = [];
      const started = performance.now();
      let sent = 0;
      while (sent < count) {
        const due = Math.min(count, Math.floor(((performance.now() - started) / 1000) * ratePerSec) + 1);
        if (due > sent) {
          const batch = keys.slice(sent, due);
          const now = performance.now();
          const messages = batch.map((key) => {
            pending.set(key, { sentAt: now, edgesLeft: edges.length });
            const event: InvalidationEvent = {
              id: randomUUID(),
              namespace: 'bench',
              keys: [key],
              tags: [],
              prefix: null,
              action: 'delete',
              timestamp: Date.now(),
            };
            return { key: `bench:${key}`, value: JSON.stringify(event) };
          });
          sends.push(producer.send({ topic: target, messages }));
          sent = due;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      const sendSeconds = Math.max((performance.now() - started) / 1000, 1 / ratePerSec);
      await Promise.all(sends);
      const waitUntil = Date.now() + 30_000;
      while (keys.some((k) => !arrived(pending.get(k))) && Date.now() < waitUntil) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const latencies: number[] = [];
      let lost = 0;
      for (const k of keys) {
        const p = pending.get(k)!;
        const at = path === 'strata' ? p.doneAt : p.kafkaAt;
        if (at === undefined) lost++;
        else latencies.push(at - p.sentAt);
        pending.delete(k);
      }
      latencies.sort((a, b) => a - b);
      const row: PurgeLatencyRow = {
        name,
        targetPerSec: ratePerSec,
        achievedPerSec: Math.round(count / sendSeconds),
        events: count,
        lost,
        p50Ms: round(quantile(latencies, 0.5)),
        p99Ms: round(quantile(latencies, 0.99)),
        maxMs: round(latencies.at(-1) ?? Number.NaN),
        kafkaP50Ms: Number.NaN,
        kafkaP99Ms: Number.NaN,
      };
      log(
        `${name}: ${row.events} events at ${row.achievedPerSec}/s → p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, max ${row.maxMs} ms, lost ${row.lost}`,
      );
      return row;
    };

    // Two seconds of traffic first: the broker's and Node's JITs, connections and the group settle.
    await runAt('warmup', 500, 1_000);

    // Same-run baseline, on its own and before the measured run so the two never compete for
    // the event loop: a bare kafkajs consumer in its own group on the baseline topic.
    const bare = client.consumer({ groupId: `${baselineTopic}-bare`, sessionTimeout: 6_000, heartbeatInterval: 1_000 });
    await bare.connect();
    await bare.subscribe({ topic: baselineTopic, fromBeginning: true });
    let bareJoined = false;
    bare.on(bare.events.GROUP_JOIN, () => {
      bareJoined = true;
    });
    await bare.run({
      eachMessage: async ({ message }) => {
        const at = performance.now();
        const key = message.key?.toString().slice('bench:'.length);
        const p = key === undefined ? undefined : pending.get(key);
        if (p && p.kafkaAt === undefined) p.kafkaAt = at;
      },
    });
    const joinDeadline = Date.now() + 30_000;
    while (!bareJoined) {
      if (Date.now() > joinDeadline) throw new Error('baseline consumer did not join its group');
      await new Promise((r) => setTimeout(r, 20));
    }
    await runAt('baseline-warmup', 500, 500, 'kafka');
    const baseline = await runAt('baseline', latencyRate, events, 'kafka');
    await bare.disconnect();

    const latency = {
      ...(await runAt('latency', latencyRate, events)),
      kafkaP50Ms: baseline.p50Ms,
      kafkaP99Ms: baseline.p99Ms,
    };
    const steps: PurgeLatencyRow[] = [];
    let sustainedPerSec = 0;
    for (const rate of rates) {
      const row = await runAt(`rate-${rate}`, rate, Math.max(1_000, Math.round(rate * stepSeconds)));
      steps.push(row);
      if (row.p99Ms >= purgeP99TargetMs || row.lost > 0) break;
      sustainedPerSec = Math.max(sustainedPerSec, row.achievedPerSec);
    }
    return {
      latency,
      steps,
      sustainedPerSec,
      p99TargetMs: purgeP99TargetMs,
      edges: edges.length,
      store: origin.store.kind,
    };
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  }
}

/** Loopback targets of issue 4, milliseconds. */
export const purgeTargets = { p50Ms: 10, p99Ms: 50 } as const;

/**
 * {@link runPurgeKafkaBench} as rows of `npm run bench`'s table: the latency
 * run against the loopback target (anchor: CDN global purge, about 150 ms p50
 * at Cloudflare and Fastly, 300 ms at Vercel), and the sustained rate.
 */
export async function purgeKafkaBenchmarks(options: PurgeKafkaBenchOptions = {}): Promise<BenchRow[]> {
  const r = await runPurgeKafkaBench(options);
  const l = r.latency;
  const met = l.lost === 0 && l.p50Ms < purgeTargets.p50Ms && l.p99Ms < purgeTargets.p99Ms;
  const ladder = r.steps.map((s) => `${s.achievedPerSec}/s→p99 ${s.p99Ms}`).join(', ');
  return [
    {
      benchmark: '(i) purge propagation: Kafka produce → both edges purged',
      subject: `${l.events} events at ${l.achievedPerSec}/s, ${r.edges} edges, ${r.store} store`,
      result: `p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, max ${l.maxMs} ms, lost ${l.lost}`,
      baseline: `Kafka alone (bare consumer, same rate, run just before): p50 ${l.kafkaP50Ms} ms, p99 ${l.kafkaP99Ms} ms; anchor: CDN global purge ≈150 ms p50`,
      target: `p50 < ${purgeTargets.p50Ms} ms, p99 < ${purgeTargets.p99Ms} ms`,
      met: met ? 'yes' : 'no',
    },
    {
      benchmark: `(j) invalidation throughput with purge p99 < ${r.p99TargetMs} ms`,
      subject: ladder,
      result: `${r.sustainedPerSec} events/s`,
      baseline: 'n/a',
      target: `highest rate with p99 < ${r.p99TargetMs} ms`,
      met: 'n/a',
    },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await runPurgeKafkaBench({
    brokers: process.env.KAFKA_BROKERS,
    redisUrl: process.env.REDIS_URL,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
