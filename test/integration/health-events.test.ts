import { afterEach, describe, expect, inject, it } from 'vitest';
import { healthEventSchema } from '../../shared/health-event.ts';
import { createTopics, kafkaOriginEnv, readTopic, uniqueName } from '../support/kafka.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/** ICD §3.1.2 on a real broker: the origin publishes `cache.health.status` on its interval. */
describe('health events', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('the origin publishes cache.health.status to the configured topic every interval, with the traffic it saw', async () => {
    const brokers = inject('kafkaBrokers');
    const topic = uniqueName('inv');
    const healthTopic = uniqueName('health');
    await createTopics(brokers, topic);
    const origin = await originFor({
      REDIS_URL: inject('redisUrl'),
      ...kafkaOriginEnv(brokers, topic, uniqueName('g')),
      HEALTH_EVENT_INTERVAL_SECONDS: '1',
      KAFKA_HEALTH_TOPIC: healthTopic,
      ORIGIN_ID: 'origin-under-test',
    });
    cleanups.push(() => origin.close());
    const ns = uniqueName('h');
    await fetch(`${origin.url}/api/v1/cache/${ns}/k?ttl=60`, { method: 'PUT', body: 'v' });
    for (let i = 0; i < 3; i++) await (await fetch(`${origin.url}/api/v1/cache/${ns}/k`)).arrayBuffer();
    await (await fetch(`${origin.url}/api/v1/cache/${ns}/absent`)).arrayBuffer();

    // Three events: at least two intervals, so the one holding the traffic is among them whatever the timing.
    // The origin creates the topic on its first publish; read once it exists.
    const messages = await eventually('3 health events', () => readTopic(brokers, healthTopic, 3, 20_000), 40_000, 200);
    const events = messages.map((m) => {
      expect(m.key).toBe('origin-under-test');
      return healthEventSchema.parse(JSON.parse(m.value!));
    });
    for (const e of events) {
      expect(e.event).toBe('cache.health.status');
      expect(e.data.status).toBe('healthy');
      expect(e.data.service_id).toBe('origin-under-test');
      expect(e.data.metrics.memory_usage).toBeGreaterThan(0);
      expect(e.data.metrics.memory_usage).toBeLessThan(1);
    }
    // The 5 requests (3 hits, 1 miss, 1 write) fall in the first interval or straddle the first two.
    const busy = events.filter((e) => e.data.metrics.ops_rate > 0);
    expect(busy.length).toBeGreaterThanOrEqual(1);
    expect(busy.some((e) => e.data.metrics.hit_rate > 0)).toBe(true);
    const times = events.map((e) => Date.parse(e.data.timestamp));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });
});
