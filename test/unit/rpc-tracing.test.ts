import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { traceRpc } from '../../origin/rpc-tracing.ts';
import { startTracing, type Tracing } from '../../platform/node/tracing.ts';
import { activeTraceId } from '../../shared/tracing.ts';

describe('RPC server spans', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  beforeAll(() => {
    tracing = startTracing({ serviceName: 'rpc-test', exporter })!;
  });
  afterAll(async () => {
    await tracing.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it('continue the caller’s traceparent, are named service/method with rpc.* attributes, and are active in the handler', async () => {
    const seenInHandler: (string | undefined)[] = [];
    const handler = traceRpc((_req: IncomingMessage, res: ServerResponse) => {
      seenInHandler.push(activeTraceId());
      setTimeout(() => res.writeHead(200).end(), 5);
    }, true);
    const server = createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const res = await fetch(
        `http://127.0.0.1:${(server.address() as AddressInfo).port}/strata.cache.v1.CacheService/Get`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/grpc-web+proto', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
          body: new Uint8Array(5),
        },
      );
      await res.arrayBuffer();
      expect(seenInHandler).toEqual([traceId]);
      const span = await new Promise<ReturnType<InMemorySpanExporter['getFinishedSpans']>[number]>((resolve) => {
        const poll = () => {
          const s = exporter.getFinishedSpans()[0];
          if (s) resolve(s);
          else setTimeout(poll, 5);
        };
        poll();
      });
      expect(span.name).toBe('strata.cache.v1.CacheService/Get');
      expect(span.kind).toBe(SpanKind.SERVER);
      expect(span.spanContext().traceId).toBe(traceId);
      expect(span.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
      expect(span.attributes).toMatchObject({
        'rpc.system': 'grpc',
        'rpc.service': 'strata.cache.v1.CacheService',
        'rpc.method': 'Get',
        'http.response.status_code': 200,
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('is the identity when tracing is off', () => {
    const handler = () => {};
    expect(traceRpc(handler, false)).toBe(handler);
  });
});
