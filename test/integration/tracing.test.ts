import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTracing, type Tracing } from '../../platform/node/tracing.ts';
import { createTopics, kafkaOriginEnv, uniqueName } from '../support/kafka.ts';
import { captureLog } from '../support/log-capture.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const root = resolve(import.meta.dirname, '../..');
// An origin serves before its Redis connection is up (answering from its local tier meanwhile), and such
// answers make no Redis call to trace: the tests wait until the store answers `/ready`.
const untilReady = (url: string) =>
  eventually('the origin to reach its store', async () => (await fetch(`${url}/ready`)).status === 200, 15_000);
const hex = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');

/**
 * Issue 7: one request followed from client to Redis. The test process
 * registers the Node SDK with an in-memory exporter, as `OTEL_EXPORTER_OTLP_ENDPOINT`
 * would with OTLP; edge and origin run in it over real HTTP, Redis and Kafka.
 */
describe('tracing', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  beforeAll(() => {
    tracing = startTracing({ serviceName: 'strata-test', exporter })!;
  });
  afterAll(async () => {
    await tracing.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

  it("a request's trace id is in the edge log line, the origin log line and the spans edge → origin → Redis", async () => {
    const originLog = captureLog('strata-origin', 'info');
    const edgeLog = captureLog('strata-edge', 'info');
    const origin = await originFor({ REDIS_URL: inject('redisUrl') }, { logger: originLog.logger });
    cleanups.push(() => origin.close());
    await untilReady(origin.url);
    const edge = await edgeFor(origin.url, {}, { logger: edgeLog.logger });
    cleanups.push(() => edge.close());
    const ns = uniqueName('traced');
    expect((await fetch(`${origin.url}/api/v1/cache/${ns}/k?ttl=60`, { method: 'PUT', body: 'v' })).status).toBe(200);

    const traceId = hex(16);
    const callerSpanId = hex(8);
    const res = await fetch(`${edge.url}/api/v1/cache/${ns}/k`, {
      headers: { traceparent: `00-${traceId}-${callerSpanId}-01`, 'X-Request-Id': 'traced-1' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('X-Cache')).toBe('MISS');

    // The same trace id in both log lines of the request.
    const line = (log: ReturnType<typeof captureLog>) => log.records().find((r) => r.request_id === 'traced-1');
    expect(await eventually('the edge log line', () => line(edgeLog))).toMatchObject({ trace_id: traceId });
    expect(await eventually('the origin log line', () => line(originLog))).toMatchObject({ trace_id: traceId });

    // And one chain of spans: caller → edge SERVER → edge CLIENT → origin SERVER → Redis CLIENT.
    const redis = await eventually('a Redis span in the trace', () =>
      spansOf(traceId).find((s) => s.attributes['db.system.name'] === 'redis'),
    );
    const spans = spansOf(traceId);
    const edgeServer = spans.find((s) => s.kind === SpanKind.SERVER && s.attributes['strata.side'] === 'edge');
    const originServer = spans.find((s) => s.kind === SpanKind.SERVER && s.attributes['strata.side'] === 'origin');
    const edgeClient = spans.find((s) => s.kind === SpanKind.CLIENT && s.attributes['http.request.method'] === 'GET');
    expect(edgeServer?.name).toBe('GET /api/v1/cache/:namespace/:key');
    expect(edgeServer?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/api/v1/cache/:namespace/:key',
      'url.path': `/api/v1/cache/${ns}/k`,
      'http.response.status_code': 200,
    });
    expect(edgeServer?.attributes).toMatchObject({ 'strata.cache.tier': 'redis', 'strata.cache.result': 'miss' });
    expect(parentOf(edgeServer!)).toBe(callerSpanId);
    expect(parentOf(edgeClient!)).toBe(edgeServer!.spanContext().spanId);
    expect(edgeClient!.attributes['http.response.status_code']).toBe(200);
    expect(originServer?.name).toBe('GET /api/v1/cache/:namespace/:key');
    expect(originServer?.attributes).toMatchObject({ 'strata.cache.tier': 'redis', 'strata.cache.result': 'hit' });
    expect(parentOf(originServer!)).toBe(edgeClient!.spanContext().spanId);
    expect(parentOf(redis)).toBe(originServer!.spanContext().spanId);
    expect(redis.kind).toBe(SpanKind.CLIENT);
    expect(redis.attributes).toMatchObject({ 'db.system': 'redis', 'server.address': '127.0.0.1' });
    expect(typeof redis.attributes['db.operation.name']).toBe('string');
    // Keys and values never become attributes.
    for (const s of spans) expect(JSON.stringify(s.attributes)).not.toContain(`${ns}:k`);
  });

  it('a gRPC (Connect protocol) call is a SERVER span continuing traceparent, with its Redis calls as children', async () => {
    const origin = await originFor({ REDIS_URL: inject('redisUrl') });
    cleanups.push(() => origin.close());
    await untilReady(origin.url);
    const traceId = hex(16);
    const res = await fetch(`${origin.url}/strata.cache.v1.CacheService/Get`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', traceparent: `00-${traceId}-${hex(8)}-01` },
      body: JSON.stringify({ namespace: uniqueName('rpc'), key: 'absent' }),
    });
    await res.arrayBuffer();
    const rpc = await eventually('the RPC span', () => spansOf(traceId).find((s) => s.kind === SpanKind.SERVER));
    expect(rpc.name).toBe('strata.cache.v1.CacheService/Get');
    expect(rpc.attributes).toMatchObject({
      'rpc.system': 'connect_rpc',
      'rpc.service': 'strata.cache.v1.CacheService',
      'rpc.method': 'Get',
    });
    expect(
      spansOf(traceId).some((s) => s.attributes['db.system'] === 'redis' && parentOf(s) === rpc.spanContext().spanId),
    ).toBe(true);
  });

  it('an invalidation produced by `npm run invalidate` continues its trace through Kafka into the purge', async () => {
    // A stand-in OTLP/HTTP collector for the script's exported producer span (JSON encoding).
    const received: unknown[] = [];
    const collector: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        if (req.url === '/v1/traces') received.push(JSON.parse(body));
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => collector.close(() => r())));
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;

    const brokers = inject('kafkaBrokers');
    const topic = uniqueName('traced');
    await createTopics(brokers, topic);
    const origin = await originFor({
      REDIS_URL: inject('redisUrl'),
      ...kafkaOriginEnv(brokers, topic, uniqueName('g')),
    });
    cleanups.push(() => origin.close());
    await origin.invalidations.ready();

    const traceId = hex(16);
    const callerSpanId = hex(8);
    const { KAFKA_BROKERS: _b, ORIGIN_URL: _o, ...base } = process.env;
    await promisify(execFile)(
      process.execPath,
      [join(root, 'scripts/invalidate.ts'), '--namespace', uniqueName('ns'), '--keys', 'a'],
      {
        cwd: root,
        env: {
          ...base,
          KAFKA_BROKERS: brokers,
          KAFKA_INVALIDATION_TOPIC: topic,
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
          TRACEPARENT: `00-${traceId}-${callerSpanId}-01`,
        },
      },
    );
    // The script exported its PRODUCER span (child of TRACEPARENT) before exiting.
    const exported = JSON.stringify(received);
    const producer = (
      JSON.parse(exported) as {
        resourceSpans: {
          scopeSpans: {
            spans: { traceId: string; spanId: string; parentSpanId: string; kind: number; name: string }[];
          }[];
        }[];
      }[]
    )
      .flatMap((r) => r.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)))
      .find((s) => s.name === `send ${topic}`);
    expect(producer).toMatchObject({ traceId, parentSpanId: callerSpanId });

    // The origin's CONSUMER span continues it, and the purge's Redis calls are its children.
    const consumer = await eventually('the consumer span', () =>
      spansOf(traceId).find((s) => s.kind === SpanKind.CONSUMER),
    );
    expect(consumer.name).toBe(`process ${topic}`);
    expect(parentOf(consumer)).toBe(producer!.spanId);
    expect(consumer.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.destination.name': topic,
    });
    await eventually('a Redis span under the consumer span', () =>
      spansOf(traceId).find(
        (s) => s.attributes['db.system'] === 'redis' && parentOf(s) === consumer.spanContext().spanId,
      ),
    );
  });
});
