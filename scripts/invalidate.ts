/**
 * `npm run invalidate -- --namespace ns --keys a,b` (or `--tags t1,t2`, `--prefix user:1:`):
 * publishes one invalidation event (ARCHITECTURE.md §4, validated with
 * `invalidationEventSchema`) so an operator can purge by hand.
 *
 * With `KAFKA_BROKERS` (or `--brokers`) set it is produced to
 * `KAFKA_INVALIDATION_TOPIC` (or `--topic`, default `cache.invalidation`),
 * keyed `namespace:key` for a single key and `namespace` otherwise, so per-key
 * order holds. Without brokers it is POSTed to the origin's in-process source
 * at `ORIGIN_URL` (or `--origin`, default `http://127.0.0.1:8080`)
 * `/api/v1/invalidations`. `--dry-run` prints the event and sends nothing.
 *
 * Tracing: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the Kafka send is a
 * PRODUCER span exported there, and its `traceparent` rides in the message
 * headers so the origin's purge continues the trace; `TRACEPARENT` (W3C
 * value) makes the send a child of the caller's trace, with or without an SDK.
 *
 * Exit codes: 0 sent, 1 delivery failed, 2 bad arguments.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { startTracing } from '../platform/node/tracing.ts';
import { type InvalidationEvent, invalidationEventSchema } from '../shared/schemas.ts';
import { withProducerSpan } from '../shared/tracing.ts';

const usage = `usage: npm run invalidate -- --namespace NS (--keys a,b | --tags t1,t2 | --prefix P)
         [--action delete|update] [--id ID] [--brokers host:port,...] [--topic T] [--origin URL] [--dry-run]`;

const list = (s: string | undefined) =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

function fail(message: string, code: number): never {
  process.stderr.write(`invalidate: ${message}\n`);
  process.exit(code);
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      namespace: { type: 'string' },
      keys: { type: 'string' },
      tags: { type: 'string' },
      prefix: { type: 'string' },
      action: { type: 'string', default: 'delete' },
      id: { type: 'string' },
      brokers: { type: 'string' },
      topic: { type: 'string' },
      origin: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }).values;
}
try {
  args = parse();
} catch (error) {
  fail(`${(error as Error).message}\n${usage}`, 2);
}
if (args.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

const parsed = invalidationEventSchema.safeParse({
  id: args.id ?? randomUUID(),
  namespace: args.namespace,
  keys: list(args.keys),
  tags: list(args.tags),
  prefix: args.prefix ?? null,
  action: args.action,
  timestamp: Date.now(),
});
if (!parsed.success) {
  const reasons = parsed.error.issues.map((i) => `${i.path.join('.') || 'event'}: ${i.message}`).join('; ');
  fail(`${reasons}\n${usage}`, 2);
}
const event: InvalidationEvent = parsed.data;
const brokers = list(args.brokers ?? process.env.KAFKA_BROKERS);
const topic = args.topic ?? process.env.KAFKA_INVALIDATION_TOPIC ?? 'cache.invalidation';
const originUrl = (args.origin ?? process.env.ORIGIN_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');

if (args['dry-run']) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
  process.exit(0);
}

try {
  if (brokers.length > 0) {
    const tracing = startTracing({
      serviceName: process.env.OTEL_SERVICE_NAME ?? 'strata-invalidate',
      endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
    });
    const producer = new Kafka({ clientId: 'strata-invalidate', brokers, logLevel: logLevel.ERROR }).producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    try {
      const key = event.keys.length === 1 ? `${event.namespace}:${event.keys[0]}` : event.namespace;
      // TRACEPARENT (env carrier convention) lets a calling job's trace continue through the origin.
      const parent: Record<string, string> = process.env.TRACEPARENT ? { traceparent: process.env.TRACEPARENT } : {};
      const [meta] = await withProducerSpan(topic, parent, (headers) =>
        producer.send({ topic, messages: [{ key, value: JSON.stringify(event), headers }] }),
      );
      process.stdout.write(
        `published ${event.id} to ${topic} partition ${meta?.partition} offset ${meta?.baseOffset} (key ${key})\n`,
      );
    } finally {
      await producer.disconnect();
      await tracing?.shutdown();
    }
  } else {
    const res = await fetch(`${originUrl}/api/v1/invalidations`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(event),
    });
    const body = await res.text();
    if (!res.ok) fail(`origin ${originUrl} answered HTTP ${res.status}: ${body}`, 1);
    process.stdout.write(`applied by ${originUrl}: ${body}\n`);
  }
} catch (error) {
  fail(`could not publish: ${error instanceof Error ? error.message : String(error)}`, 1);
}
