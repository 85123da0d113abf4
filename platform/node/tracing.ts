import { type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';
import { strataTracer } from '../../shared/tracing.ts';

/**
 * The OpenTelemetry SDK of the Node entry points (origin and Node edge; the
 * Workers edge has the API alone). `shared/tracing.ts` opens the HTTP and
 * Kafka spans; this file registers the provider that records them, exports
 * them over OTLP/HTTP, and turns ioredis's own diagnostics channels into
 * `db.redis` spans.
 */

/** Milliseconds `shutdown()` waits for the last spans to reach the collector. */
export const shutdownFlushMs = 3_000;

/**
 * A registered tracer provider; `shutdown()` unhooks Redis and flushes pending
 * spans for at most {@link shutdownFlushMs}, never throwing (a dead collector
 * loses those spans, nothing else).
 */
export interface Tracing {
  readonly provider: NodeTracerProvider;
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** `service.name` of the resource, e.g. `strata-origin`. */
  readonly serviceName: string;
  /**
   * OTLP/HTTP base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g.
   * `http://collector:4318`); spans go to `<endpoint>/v1/traces` in batches.
   */
  readonly endpoint?: string;
  /** Export to this exporter instead, one span at a time (tests: `InMemorySpanExporter`). */
  readonly exporter?: SpanExporter;
}

/**
 * Registers a global tracer provider with the AsyncLocalStorage context
 * manager and the W3C Trace Context propagator, and subscribes to ioredis's
 * tracing channels. Call before building apps: they decide once whether to
 * trace (`isTracingEnabled`). With neither `endpoint` nor `exporter` it
 * returns null and registers nothing, so tracing costs nothing.
 */
export function startTracing(options: TracingOptions): Tracing | null {
  const exporter =
    options.exporter ?? (options.endpoint ? new OTLPTraceExporter({ url: otlpTracesUrl(options.endpoint) }) : null);
  if (!exporter) return null;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: [options.exporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)],
  });
  provider.register();
  const unhook = traceRedisCommands();
  return {
    provider,
    async shutdown() {
      unhook();
      // An unreachable collector must not hold up or crash a shutdown: flush for a bounded time, drop the rest.
      let timer: NodeJS.Timeout | undefined;
      const bounded = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, shutdownFlushMs);
      });
      await Promise.race([provider.shutdown().catch(() => {}), bounded]);
      clearTimeout(timer);
    },
  };
}

/** `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL; the traces signal lives under `/v1/traces` (OTLP spec). */
export function otlpTracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`;
}

/** What ioredis (≥ 5.9) publishes on `ioredis:command` / `ioredis:batch` (see its `built/tracing.js`). */
interface RedisCommandContext {
  command?: string;
  batchMode?: string;
  batchSize?: number;
  database?: number;
  serverAddress?: string;
  serverPort?: number;
  error?: unknown;
}

/**
 * One CLIENT span per Redis command or MULTI batch, child of the active span
 * (the origin's request or Kafka span), named by the command (`GET`, `EVALSHA`)
 * with `db.system.name` redis, `db.operation.name`, `db.namespace` (database
 * index), `server.address` and `server.port`; https://opentelemetry.io/docs/specs/semconv/database/redis/.
 * Arguments are left out: they hold keys and values. ioredis publishes only
 * while someone subscribes, so without tracing it pays nothing.
 * @returns the function that unsubscribes.
 */
export function traceRedisCommands(): () => void {
  const tracer = strataTracer();
  const spans = new WeakMap<object, Span>();
  const hooks = (batch: boolean) => ({
    start(message: unknown) {
      const m = message as RedisCommandContext;
      const operation = batch ? (m.batchMode ?? 'MULTI') : (m.command ?? 'unknown').toUpperCase();
      // Spans only inside a traced request or event: connection-level chatter (INFO, PING) stays out.
      if (!trace.getSpan(context.active())) return;
      const span = tracer.startSpan(operation, {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'redis',
          'db.system': 'redis',
          'db.operation.name': operation,
          'db.namespace': String(m.database ?? 0),
          ...(m.serverAddress ? { 'server.address': m.serverAddress } : {}),
          ...(m.serverPort ? { 'server.port': m.serverPort } : {}),
          ...(batch && m.batchSize !== undefined ? { 'db.operation.batch.size': m.batchSize } : {}),
        },
      });
      spans.set(m, span);
    },
    error(message: unknown) {
      const m = message as RedisCommandContext;
      const span = spans.get(m);
      if (!span) return;
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: m.error instanceof Error ? m.error.message : 'redis error',
      });
      if (m.error instanceof Error) span.setAttribute('error.type', m.error.name);
    },
    asyncEnd(message: unknown) {
      const m = message as RedisCommandContext;
      spans.get(m)?.end();
      spans.delete(m);
    },
    end() {},
    asyncStart() {},
  });
  const channels: [TracingChannel<unknown, object>, ReturnType<typeof hooks>][] = [
    [tracingChannel('ioredis:command'), hooks(false)],
    [tracingChannel('ioredis:batch'), hooks(true)],
  ];
  for (const [channel, h] of channels) channel.subscribe(h);
  return () => {
    for (const [channel, h] of channels) channel.unsubscribe(h);
  };
}
