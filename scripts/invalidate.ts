/**
 * `npm run invalidate -- --namespace ns --keys a,b` (or `--tags t1,t2`, `--prefix user:1:`):
 * publishes one invalidation event (docs/kafka.md, validated with
 * `invalidationEventSchema`) so an operator can purge by hand.
 *
 * With `KAFKA_BROKERS` (or `--brokers`) set it is produced to
 * `KAFKA_INVALIDATION_TOPIC` (or `--topic`, default `cache.invalidation`),
 * keyed `namespace:key` for a single key and `namespace` otherwise, so per-key
 * order holds. Without brokers it is POSTed to the origin's in-process source
 * at `ORIGIN_URL` (or `--origin`, default `http://127.0.0.1:8080`)
 * `/api/v1/invalidations` with `--token` or `STRATA_TOKEN` as its bearer
 * token (`cache:delete` in the namespace, `cache:flush` for a prefix).
 * `--dry-run` prints the event and sends nothing.
 *
 * Tracing: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the Kafka send is a
 * PRODUCER span exported there, and its `traceparent` rides in the message
 * headers so the origin's purge continues the trace; `TRACEPARENT` (W3C
 * value) makes the send a child of the caller's trace, with or without an SDK.
 *
 * Exit codes: 0 sent, 1 delivery failed, 2 bad arguments.
 */
import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { type KafkaConnection, kafkaClient, kafkaConnectionFromConfig } from '../origin/kafka/client.ts';
import { invalidationMessageKey } from '../origin/regions/forwarder.ts';
import { startTracing } from '../platform/node/tracing.ts';
import { originConfigSchema, parseConfig } from '../shared/config.ts';
import { type InvalidationEvent, invalidationEventSchema } from '../shared/schemas.ts';
import { withProducerSpan } from '../shared/tracing.ts';
import { parseCli } from './lib/cli.ts';
import { bearerHeaders, cliToken, refusedHint, tokenOption } from './lib/cli-token.ts';

const usage = `usage: npm run invalidate -- --namespace NS (--keys a,b | --tags t1,t2 | --prefix P)
         [--action delete|update] [--id ID] [--brokers host:port,...] [--topic T] [--origin URL] [--token JWT] [--dry-run]
the origin (no brokers) needs a token: --token, or STRATA_TOKEN in the environment`;

const list = (s: string | undefined) =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

function fail(message: string, code: number): never {
  process.stderr.write(`invalidate: ${message}\n`);
  process.exit(code);
}

const args = parseCli('invalidate', usage, {
  namespace: { type: 'string' },
  keys: { type: 'string' },
  tags: { type: 'string' },
  prefix: { type: 'string' },
  action: { type: 'string', default: 'delete' },
  id: { type: 'string' },
  brokers: { type: 'string' },
  topic: { type: 'string' },
  origin: { type: 'string' },
  ...tokenOption,
  'dry-run': { type: 'boolean', default: false },
});

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
    // The origin's one Kafka client factory, so KAFKA_SSL, KAFKA_SSL_CA_FILE and KAFKA_SASL_* apply here too.
    let connection: KafkaConnection | undefined;
    try {
      connection = kafkaConnectionFromConfig(
        parseConfig(originConfigSchema, {
          ...process.env,
          KAFKA_BROKERS: brokers.join(','),
          KAFKA_CLIENT_ID: 'strata-invalidate',
        }),
      );
    } catch (error) {
      fail(error instanceof Error ? error.message : String(error), 2);
    }
    const producer = kafkaClient(connection!).producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    try {
      const key = invalidationMessageKey(event);
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
    const token = cliToken(args.token, process.env);
    const res = await fetch(`${originUrl}/api/v1/invalidations`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...bearerHeaders(token) },
      body: JSON.stringify(event),
    });
    const body = await res.text();
    if (!res.ok) fail(`origin ${originUrl} answered HTTP ${res.status}${refusedHint(res.status, token)}: ${body}`, 1);
    process.stdout.write(`applied by ${originUrl}: ${body}\n`);
  }
} catch (error) {
  fail(`could not publish: ${error instanceof Error ? error.message : String(error)}`, 1);
}
