import type { IncomingHttpHeaders } from 'node:http';
import { context, propagation, SpanKind, SpanStatusCode, type TextMapGetter, trace } from '@opentelemetry/api';
import { strataTracer } from '../shared/tracing.ts';

/** What the wrapper reads of a request and a response (HTTP/1.1 and HTTP/2 compatibility API alike). */
type AnyRequest = { readonly url?: string; readonly headers: IncomingHttpHeaders };
type AnyResponse = { readonly statusCode: number; once(event: 'close', listener: () => void): unknown };

const getter: TextMapGetter<AnyRequest> = {
  keys: (req) => Object.keys(req.headers),
  get: (req, key) => {
    const v = req.headers[key];
    return Array.isArray(v) ? v[0] : v;
  },
};

/** `rpc.system` by wire protocol: gRPC and gRPC-web are `grpc`; the Connect protocol is `connect_rpc`. */
export function rpcSystem(contentType: string | undefined): 'grpc' | 'connect_rpc' {
  return contentType?.startsWith('application/grpc') ? 'grpc' : 'connect_rpc';
}

/**
 * Wraps the origin's Connect handler (gRPC, gRPC-web, Connect on the REST
 * port) so every call is a SERVER span continuing the caller's
 * `traceparent`, named `{rpc.service}/{rpc.method}` with `rpc.system`,
 * `rpc.service`, `rpc.method` and `http.response.status_code`, per the RPC
 * semantic conventions (https://opentelemetry.io/docs/specs/semconv/rpc/rpc-spans/).
 * The RPC status itself travels in trailers or the body, out of this
 * wrapper's sight: `rpc.grpc.status_code` is not recorded. The service's
 * Redis calls become its children. Install only when tracing is on: it is
 * the identity otherwise.
 */
export function traceRpc<Req extends AnyRequest, Res extends AnyResponse>(
  handler: (req: Req, res: Res) => void,
  enabled: boolean,
): (req: Req, res: Res) => void {
  if (!enabled) return handler;
  const tracer = strataTracer();
  return (req, res) => {
    const path = (req.url ?? '').split('?', 1)[0]!;
    const [, service = '', method = ''] = path.split('/');
    const parent = propagation.extract(context.active(), req, getter);
    const span = tracer.startSpan(
      `${service}/${method}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'rpc.system': rpcSystem(req.headers['content-type']),
          'rpc.service': service,
          'rpc.method': method,
          'strata.side': 'origin',
        },
      },
      parent,
    );
    res.once('close', () => {
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(parent, span), () => handler(req, res));
  };
}
