import {
  type Attributes,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api';
import type { MiddlewareHandler } from 'hono';

/**
 * Tracing with the OpenTelemetry API alone (runtime-free: no SDK, no Node
 * imports). Without an SDK registered every call here is the API's no-op;
 * the Node entry points register one (`platform/node/tracing.ts`) when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Context travels as W3C Trace Context
 * (`traceparent`, `tracestate`; https://www.w3.org/TR/trace-context/).
 *
 * Span names and attributes follow the OpenTelemetry semantic conventions
 * (HTTP spans: `{method} {http.route}`, `http.request.method`, `url.path`,
 * `http.route`, `http.response.status_code`; https://opentelemetry.io/docs/specs/semconv/http/http-spans/).
 * Keys, values and credentials are never attributes.
 */

/** Instrumentation scope of every Strata span. */
export const tracerName = 'strata';

/** The tracer all Strata spans come from (the API's no-op until an SDK registers). */
export function strataTracer() {
  return trace.getTracer(tracerName);
}

/**
 * True when a tracer provider that records spans is registered now. Apps
 * check once when built, so with tracing off the hot path skips even the
 * no-op span objects.
 */
export function isTracingEnabled(): boolean {
  const probe = strataTracer().startSpan('probe');
  const recording = probe.isRecording();
  // A recording probe is never ended, so never exported.
  return recording;
}

/**
 * The trace id of the active span, or undefined when there is none (tracing
 * off, or no span in this async context). 32 lowercase hex digits.
 */
export function activeTraceId(): string | undefined {
  const span = trace.getSpan(context.active());
  if (!span) return undefined;
  const { traceId } = span.spanContext();
  // An all-zero id is the API's "invalid" span context.
  return traceId === '00000000000000000000000000000000' ? undefined : traceId;
}

/**
 * Puts how the cache answered on the active span (the request's SERVER
 * span): `strata.cache.operation`, `strata.cache.tier`, `strata.cache.result`
 * (the labels of `strata_requests_total`). Nothing without an active span.
 */
export function annotateCacheSpan(operation: string, tier: string, result: string): void {
  trace.getActiveSpan()?.setAttributes({
    'strata.cache.operation': operation,
    'strata.cache.tier': tier,
    'strata.cache.result': result,
  });
}

const headerGetter: TextMapGetter<Headers> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key) ?? undefined,
};

/**
 * Hono middleware opening one SERVER span per request, continuing the
 * caller's `traceparent` when one is sent. Named `{method} {route}` once the
 * route is known (e.g. `GET /api/v1/cache/:namespace/:key`); 5xx answers
 * mark the span as an error (4xx are the client's, per the conventions).
 *
 * @param side `edge` or `origin`, as the `strata.side` attribute.
 * @param skip paths that get no span (the long-lived purge stream).
 */
export function traceServerRequests(
  side: 'edge' | 'origin',
  skip: (path: string) => boolean = () => false,
): MiddlewareHandler {
  const tracer = strataTracer();
  return async (c, next) => {
    if (skip(c.req.path)) return await next();
    const parent = propagation.extract(context.active(), c.req.raw.headers, headerGetter);
    const method = c.req.method;
    const span = tracer.startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': method, 'url.path': c.req.path, 'strata.side': side },
      },
      parent,
    );
    try {
      await context.with(trace.setSpan(parent, span), next);
    } finally {
      const route = c.req.routePath;
      if (route && route !== '/*' && route !== '*') {
        span.updateName(`${method} ${route}`);
        span.setAttribute('http.route', route);
      }
      const status = c.res.status;
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      if (c.error) span.recordException(c.error);
      span.end();
    }
  };
}

/**
 * Runs `call` inside a CLIENT span for an outgoing HTTP request and gives it
 * the headers that carry the span's context (`traceparent`), to merge into
 * the request. Records `http.response.status_code` from the returned
 * response; a thrown error ends the span as an error and is rethrown.
 */
export async function tracedFetch<R extends { readonly status: number } = Response>(
  method: string,
  url: URL,
  call: (traceHeaders: Record<string, string>) => Promise<R>,
): Promise<R> {
  const span = strataTracer().startSpan(method, {
    kind: SpanKind.CLIENT,
    attributes: {
      'http.request.method': method,
      'server.address': url.hostname,
      'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      'url.full': `${url.origin}${url.pathname}`,
    },
  });
  const traceHeaders: Record<string, string> = {};
  const ctx = trace.setSpan(context.active(), span);
  propagation.inject(ctx, traceHeaders);
  try {
    const res = await context.with(ctx, () => call(traceHeaders));
    span.setAttribute('http.response.status_code', res.status);
    if (res.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
    return res;
  } catch (error) {
    endWithError(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Marks `span` failed with `error` (the span is ended by the caller). */
export function endWithError(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  if (error instanceof Error) span.recordException(error);
}

type HeaderValue = { toString(): string };

/** Header map of a Kafka message (kafkajs `IHeaders`): values are Buffers, strings, or arrays of them. */
export type MessageHeaders = Record<string, HeaderValue | HeaderValue[] | undefined>;

const kafkaGetter: TextMapGetter<MessageHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    const first = Array.isArray(v) ? v[0] : v;
    return first === undefined ? undefined : first.toString();
  },
};

/**
 * Runs `send` in a PRODUCER span (`send {topic}`, `messaging.system` kafka)
 * and hands it the headers carrying that span's context, to put on the
 * message so the consumer continues the trace. `parent` is an optional W3C
 * carrier (e.g. `{ traceparent: process.env.TRACEPARENT }`) to continue.
 * Without an SDK no span exists and the parent's headers pass through as
 * they are.
 */
export async function withProducerSpan<T>(
  topic: string,
  parent: Record<string, string>,
  send: (headers: Record<string, string>) => Promise<T>,
): Promise<T> {
  const tracer = strataTracer();
  const parentContext = propagation.extract(context.active(), parent);
  const span = tracer.startSpan(
    `send ${topic}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'send',
        'messaging.destination.name': topic,
      },
    },
    parentContext,
  );
  if (!span.isRecording()) return await send({ ...parent });
  const ctx = trace.setSpan(parentContext, span);
  const headers: Record<string, string> = {};
  propagation.inject(ctx, headers);
  try {
    return await context.with(ctx, () => send(headers));
  } catch (error) {
    endWithError(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/**
 * Runs `work` in a CONSUMER span (`process {topic}`) that continues the
 * producer's context from the message's `traceparent` header, per the
 * messaging conventions (`messaging.system` kafka, `messaging.operation.type`
 * process, `messaging.destination.name`, partition and offset).
 * https://opentelemetry.io/docs/specs/semconv/messaging/kafka/
 */
export async function withConsumerSpan<T>(
  headers: MessageHeaders | undefined,
  where: { topic: string; partition: number; offset: string },
  work: () => Promise<T>,
): Promise<T> {
  const parent = headers ? propagation.extract(context.active(), headers, kafkaGetter) : context.active();
  const attributes: Attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.destination.name': where.topic,
    'messaging.destination.partition.id': String(where.partition),
    'messaging.kafka.offset': Number(where.offset),
  };
  const span = strataTracer().startSpan(`process ${where.topic}`, { kind: SpanKind.CONSUMER, attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), work);
  } catch (error) {
    endWithError(span, error);
    throw error;
  } finally {
    span.end();
  }
}
