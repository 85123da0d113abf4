import { getHeapStatistics } from 'node:v8';
import { Partitioners, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { HealthEvent } from '../../shared/health-event.ts';
import { counterIncrease, type MetricJson, requestCount, snapshotFromMetrics } from '../../shared/stats.ts';
import { ensureTopics } from '../invalidation/kafka-topics.ts';
import { type KafkaConnection, kafkaClient } from '../kafka/client.ts';

/**
 * Builds the ICD §3.1.2 event from one interval's counter increases at the
 * origin (`shared/stats.ts` keys). Pure.
 * @param seconds length of the interval.
 * @param breaker the breaker's state, or undefined without one (embedded store).
 */
export function healthEvent(input: {
  increase: Record<string, number>;
  seconds: number;
  breaker: string | undefined;
  memoryUsage: number;
  serviceId: string;
  nowMs: number;
}): HealthEvent {
  const reads = requestCount(input.increase, { operation: 'get' });
  const answered = requestCount(input.increase, { operation: 'get', results: ['hit', 'stale'] });
  return {
    event: 'cache.health.status',
    data: {
      status: input.breaker === undefined || input.breaker === 'closed' ? 'healthy' : 'degraded',
      metrics: {
        hit_rate: reads > 0 ? answered / reads : 0,
        memory_usage: input.memoryUsage,
        ops_rate: Math.round(requestCount(input.increase, {}) / input.seconds),
      },
      service_id: input.serviceId,
      timestamp: new Date(input.nowMs).toISOString(),
    },
  };
}

/** V8 heap used ÷ heap limit of this process, 0..1. */
export function heapUsage(): number {
  const h = getHeapStatistics();
  return h.used_heap_size / h.heap_size_limit;
}

/** Where health events go. */
export interface HealthSink {
  publish(event: HealthEvent): Promise<void>;
  close(): Promise<void>;
}

/**
 * A Kafka producer for health events: JSON value, key = `service_id` (one
 * origin's events stay in order). Connects (and creates `topic` if missing)
 * on the first publish, not at start-up, so an unreachable broker delays
 * health events, never the origin; a failed connect is retried on the next
 * publish.
 */
export function kafkaHealthSink(options: { connection: KafkaConnection; topic: string }): HealthSink {
  const kafka = kafkaClient(options.connection);
  const producer: Producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  let connected: Promise<void> | undefined;
  const connect = async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, [{ topic: options.topic, numPartitions: 1 }]);
    } finally {
      await admin.disconnect();
    }
    await producer.connect();
  };
  return {
    async publish(event) {
      connected ??= connect().catch((error) => {
        connected = undefined;
        throw error;
      });
      await connected;
      await producer.send({
        topic: options.topic,
        messages: [{ key: event.data.service_id, value: JSON.stringify(event) }],
      });
    },
    async close() {
      if (connected) await producer.disconnect();
    },
  };
}

/** A running health-event timer. */
export interface HealthEvents {
  /** Publishes one event now for the interval since the last one (the timer calls this). */
  tick(): Promise<HealthEvent>;
  /** Stops the timer and closes the sink. */
  stop(): Promise<void>;
}

/**
 * Publishes a health event every `intervalMs`, computed from the origin's
 * Prometheus registry (the same numbers `/metrics` shows). A failed publish
 * is logged at warn and the next tick tries again; ticks never overlap.
 */
export function startHealthEvents(options: {
  registry: Registry;
  breakerState: () => string | undefined;
  sink: HealthSink;
  intervalMs: number;
  serviceId: string;
  logger: Logger;
  now?: () => number;
}): HealthEvents {
  const now = options.now ?? Date.now;
  let prev: Record<string, number> | undefined;
  let prevAt = now();
  const read = async () => snapshotFromMetrics((await options.registry.getMetricsAsJSON()) as MetricJson[]).counters;
  const ready = read().then((c) => {
    prev = c;
  });
  let running: Promise<HealthEvent> | undefined;
  const tick = async (): Promise<HealthEvent> => {
    await ready;
    const cur = await read();
    const at = now();
    const event = healthEvent({
      increase: counterIncrease(prev, cur),
      seconds: Math.max(0.001, (at - prevAt) / 1000),
      breaker: options.breakerState(),
      memoryUsage: heapUsage(),
      serviceId: options.serviceId,
      nowMs: at,
    });
    prev = cur;
    prevAt = at;
    await options.sink.publish(event);
    return event;
  };
  const timer = setInterval(() => {
    if (running) return;
    running = tick()
      .catch((error) => {
        options.logger.warn({ err: error }, 'health event not published');
        return undefined as unknown as HealthEvent;
      })
      .finally(() => {
        running = undefined;
      });
  }, options.intervalMs);
  timer.unref();
  return {
    tick,
    async stop() {
      clearInterval(timer);
      await running;
      await options.sink.close();
    },
  };
}
