/**
 * Benchmark (t), the Message Hub round trip: a `set` request produced →
 * its response consumed (`read_committed`), at 100, 500 and 2 000 requests/s,
 * beside a same-run baseline that sends the same requests through the same
 * transactional consume → produce loop (`origin/hub/consumer.ts`: one
 * transaction per input partition, `sendOffsets`, `read_committed`) whose
 * handler only echoes, so the difference is what the cache adds (decoding,
 * the Redis write, the purge log, the dedup record).
 *
 * Requester, origin and echo share this process, so `performance.now()` is one
 * clock, and their contention for the cores is in the numbers. Authentication
 * is off (a verified token is cached, so it adds little after the first).
 * `node bench/run.ts --only hub` runs it (with a throwaway Redis).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { hubConsumer } from '../origin/hub/consumer.ts';
import { hubTopicNames } from '../origin/hub/from-config.ts';
import { startOrigin } from '../origin/server.ts';
import { startKafka } from '../scripts/services/kafka.ts';
import { originConfigSchema, parseConfig } from '../shared/config.ts';
import { hubEventVersion, hubHeaders } from '../shared/hub.ts';
import type { BenchRow } from './load.ts';
import { percentile } from './trace.ts';

/** One rate's measurement, milliseconds from produce to the response read. */
export interface HubRateResult {
  readonly ratePerSec: number;
  readonly requests: number;
  readonly answered: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly baselineP50Ms: number;
  readonly baselineP99Ms: number;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Starts a broker of its own (or uses `brokers`) and, on `redisUrl`, an
 * origin with the hub on, and the echo baseline; runs each rate for
 * `seconds` (default 3) on both paths; stops everything.
 */
export async function runHubBench(options: {
  redisUrl: string;
  brokers?: string;
  seconds?: number;
  rates?: readonly number[];
}): Promise<HubRateResult[]> {
  const seconds = options.seconds ?? 3;
  const rates = options.rates ?? [100, 500, 2_000];
  const cleanups: (() => Promise<void>)[] = [];
  const quiet = pino({ level: 'silent' });
  try {
    let brokers = options.brokers;
    if (!brokers) {
      const dir = mkdtempSync(join(tmpdir(), 'strata-bench-hub-kafka-'));
      const kafka = await startKafka({ dir });
      cleanups.unshift(async () => {
        await kafka.stop();
        rmSync(dir, { recursive: true, force: true });
      });
      brokers = kafka.brokers;
    }
    const { redisUrl } = options;
    const run = randomUUID().slice(0, 8);
    const prefix = `bench-hub-${run}.`;
    const topics = hubTopicNames(prefix);
    const origin = await startOrigin(
      parseConfig(originConfigSchema, {
        ORIGIN_PORT: '0',
        LOG_LEVEL: 'silent',
        REDIS_URL: redisUrl,
        KAFKA_BROKERS: brokers,
        KAFKA_FROM_BEGINNING: 'true',
        KAFKA_SESSION_TIMEOUT_MS: '6000',
        KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
        HUB_ENABLED: 'true',
        HUB_TOPIC_PREFIX: prefix,
        HUB_GROUP_ID: `${prefix}origin`,
        HEALTH_EVENT_INTERVAL_SECONDS: '0',
      }),
      { logger: quiet },
    );
    cleanups.unshift(() => origin.close());
    await origin.hub!.ready(60_000);

    // The baseline: the same transactional loop, answering each request with an echo.
    const echoIn = `${prefix}echo.request`;
    const echoOut = `${prefix}echo.response`;
    const echo = hubConsumer({
      connection: { brokers: [brokers], clientId: 'strata-bench-echo' },
      groupId: `${prefix}echo`,
      requestTopics: [echoIn],
      responseTopics: [echoOut],
      dlqTopic: `${prefix}echo.dlq`,
      logger: quiet,
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 1_000,
      fromBeginning: true,
      handle: async (m) => {
        const request = JSON.parse(m.value!.toString()) as { data: { correlation_id: string } };
        return {
          kind: 'answer',
          topic: echoOut,
          key: m.key?.toString() ?? '',
          replayed: false,
          response: {
            event: 'cache.operation.response',
            version: hubEventVersion,
            data: {
              operation: 'set',
              status: 'success',
              correlation_id: request.data.correlation_id,
              timestamp: new Date().toISOString(),
              service: 'echo',
            },
          },
        };
      },
    });
    await echo.start();
    cleanups.unshift(() => echo.stop());
    await echo.ready(60_000);

    const kafka = new Kafka({ clientId: 'strata-bench-hub', brokers: [brokers], logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    cleanups.unshift(() => producer.disconnect());
    const sentAt = new Map<string, number>();
    const took = new Map<string, number>();
    const reader = kafka.consumer({ groupId: `${prefix}reader`, maxWaitTimeInMs: 10 });
    await reader.connect();
    cleanups.unshift(() => reader.disconnect());
    await reader.subscribe({ topic: topics.operationResponse, fromBeginning: true });
    await reader.subscribe({ topic: echoOut, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => {
        const id = message.headers?.[hubHeaders.correlationId]?.toString();
        const at = id === undefined ? undefined : sentAt.get(id);
        if (id !== undefined && at !== undefined && !took.has(id)) took.set(id, performance.now() - at);
      },
    });

    /**
     * Sends `ratePerSec` requests a second for `seconds` to `topic`, the ones due every 5 ms in one produce
     * (a request's clock starts just before the produce that carries it); resolves with the latencies.
     */
    const measure = async (topic: string, ratePerSec: number, label: string) => {
      const total = Math.round(ratePerSec * seconds);
      const ids: string[] = [];
      const started = performance.now();
      const sends: Promise<unknown>[] = [];
      let next = 0;
      while (next < total) {
        const due = Math.min(total, Math.floor(((performance.now() - started) * ratePerSec) / 1000) + 1);
        const messages = [];
        const at = performance.now();
        for (; next < due; next++) {
          const id = `${label}-${next}-${randomUUID()}`;
          const key = `k${next % 1000}`;
          ids.push(id);
          sentAt.set(id, at);
          const request = {
            event: 'cache.operation.request',
            version: hubEventVersion,
            data: {
              operation: 'set',
              service: 'bench',
              namespace: 'bench',
              key,
              value: 'dmFsdWU=',
              ttl: 600,
              correlation_id: id,
              timestamp: new Date().toISOString(),
              request_ttl_ms: 60_000,
            },
          };
          messages.push({ key: `bench:${key}`, value: JSON.stringify(request) });
        }
        if (messages.length > 0) sends.push(producer.send({ topic, messages, acks: 1 }));
        await new Promise((r) => setTimeout(r, 5));
      }
      await Promise.all(sends);
      const deadline = Date.now() + 30_000;
      while (ids.some((id) => !took.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const latencies = ids.map((id) => took.get(id)).filter((ms): ms is number => ms !== undefined);
      return {
        requests: total,
        answered: latencies.length,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
      };
    };

    // Warm-up: producers per partition, connections, JIT.
    await measure(topics.operationRequest, 100, 'warm');
    await measure(echoIn, 100, 'warm-echo');
    const results: HubRateResult[] = [];
    for (const rate of rates) {
      const base = await measure(echoIn, rate, `echo-${rate}`);
      const hub = await measure(topics.operationRequest, rate, `hub-${rate}`);
      results.push({
        ratePerSec: rate,
        requests: hub.requests,
        answered: hub.answered,
        p50Ms: round(hub.p50),
        p99Ms: round(hub.p99),
        baselineP50Ms: round(base.p50),
        baselineP99Ms: round(base.p99),
      });
    }
    return results;
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  }
}

/** The rows `bench/run.ts` prints. */
export async function hubBenchmarks(options: { redisUrl: string; durationSeconds?: number }): Promise<BenchRow[]> {
  const results = await runHubBench({ redisUrl: options.redisUrl, seconds: Math.min(options.durationSeconds ?? 3, 5) });
  return results.map((r) => ({
    benchmark: '(t) hub round trip, produce → response read',
    subject: `${r.ratePerSec} req/s: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms (${r.answered}/${r.requests} answered)`,
    baseline: `echo through the same transactional loop: p50 ${r.baselineP50Ms} ms, p99 ${r.baselineP99Ms} ms`,
    result: `+${round(r.p50Ms - r.baselineP50Ms)} ms p50`,
    target: 'reported (goal < 5 ms)',
    met: 'n/a',
  }));
}
