import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { type DescService, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  createContextValues,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
} from '@connectrpc/connect';
import { invokeUnaryImplementation } from '@connectrpc/connect/protocol';
import { parseTimeout, setTrailerStatus, trailerFlag, trailerSerialize } from '@connectrpc/connect/protocol-grpc-web';

/** A unary method's implementation with its descriptor, as Connect's router holds it. */
type UnarySpec = MethodImplSpec & { kind: 'unary' };

/** Options of {@link createUnaryFastPath}. */
export interface UnaryFastPathOptions {
  /** The service descriptor (`CacheService`). */
  readonly service: DescService;
  /** The implementation Connect's router serves, called the same way. */
  readonly impl: object;
  /** The interceptors Connect's router runs, in the same order (first = outermost). */
  readonly interceptors: readonly Interceptor[];
  /** Largest message, bytes: the router's `readMaxBytes`. */
  readonly readMaxBytes: number;
  /**
   * Connect's own path for a request the fast path began to read but does not
   * answer (malformed envelope or message, oversized body): `body` replays the
   * bytes already read, then the rest of the request.
   */
  readonly fallback: (req: IncomingMessage, res: ServerResponse, body: AsyncIterable<Uint8Array>) => void;
}

/**
 * Tries to answer one request; false = not taken (nothing read, nothing
 * written), hand it to Connect.
 */
export type UnaryFastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

/** `application/grpc-web` and `application/grpc-web+proto`: binary gRPC-web (Connect's content-type rule, minus text and JSON). */
const grpcWebBinary = /^application\/grpc-web(?:\+proto)?$/i;
const responseContentType = 'application/grpc-web+proto';
/** Connect's default `maxTimeoutMs` (the router sets none). */
const maxTimeoutMs = Number.MAX_SAFE_INTEGER;
/**
 * The reason the call's signal is aborted with once the call is over, as
 * Connect aborts it (an AbortError), built once instead of per call.
 */
const callOver = new DOMException('This operation was aborted', 'AbortError');
const okTrailerFrame = envelope(trailerFlag, new TextEncoder().encode('grpc-status: 0\r\n'));

/**
 * A unary gRPC-web fast path for the origin's HTTP/1.1 listener: the same
 * answers as Connect's gRPC-web handler, byte for byte (status, headers,
 * message frame, trailers frame), without Connect's streaming pipeline. The
 * body goes out as one HTTP chunk where Connect writes one per frame.
 *
 * Takes a request only when it is a `POST` over HTTP/1.x to a unary method
 * of `service`, with content type `application/grpc-web` or
 * `application/grpc-web+proto`, no `grpc-encoding` other than `identity`, no
 * `grpc-accept-encoding` (Connect could compress the answer) and a valid or
 * absent `grpc-timeout`. Everything else (gRPC over HTTP/2, gRPC-web text or
 * JSON, the Connect protocol, compression) returns false for Connect.
 *
 * For a request it takes, it reads the body (at most `readMaxBytes` + 5
 * bytes), parses the one envelope and decodes the message with the method's
 * generated schema (`fromBinary`). A body that is larger, has a flag set,
 * holds more or less than one envelope, or does not decode goes to
 * `fallback` with the bytes already read, so Connect answers it as before
 * (RESOURCE_EXHAUSTED, INVALID_ARGUMENT, …). Then the call runs through
 * Connect's own `invokeUnaryImplementation` with the router's interceptors
 * and implementation, under a context that carries the deadline of
 * `grpc-timeout` (DEADLINE_EXCEEDED, "the operation timed out", as Connect)
 * and is aborted when the client goes away. The answer is HTTP 200 with the
 * response headers the call set, the message frame and the trailers frame
 * (`grpc-status`, `grpc-message` percent-encoded and the error's metadata,
 * serialized by Connect's own `setTrailerStatus` / `trailerSerialize`).
 * Wire format: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md
 *
 * One difference, invisible to clients and to this service: the context's
 * `url` is `http://<host><path>` as sent, not normalised by `new URL`.
 */
export function createUnaryFastPath(options: UnaryFastPathOptions): UnaryFastPath {
  const { service, interceptors, readMaxBytes, fallback } = options;
  const implSpec = createServiceImplSpec(service, options.impl as Parameters<typeof createServiceImplSpec>[1]);
  const methods = new Map<string, UnarySpec>();
  for (const method of service.methods) {
    const spec = implSpec.methods[method.localName];
    if (spec?.kind === 'unary') methods.set(`/${service.typeName}/${method.name}`, spec);
  }
  const chain = [...interceptors];
  const limit = readMaxBytes + 5;

  return (req, res) => {
    if (req.method !== 'POST' || req.httpVersionMajor !== 1) return false;
    const headers = req.headers;
    const type = headers['content-type'];
    if (type === undefined || !grpcWebBinary.test(type) || headers.host === undefined) return false;
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return false;
    if (headers['grpc-accept-encoding']) return false;
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const spec = methods.get(query < 0 ? url : url.slice(0, query));
    if (!spec) return false;
    const grpcTimeout = headers['grpc-timeout'];
    if (Array.isArray(grpcTimeout)) return false;
    const timeout = parseTimeout(grpcTimeout ?? null, maxTimeoutMs);
    // An invalid or too long timeout: Connect answers INVALID_ARGUMENT.
    if (timeout.error) return false;

    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.byteLength;
      if (size > limit) {
        // Oversized: Connect reads the rest and answers RESOURCE_EXHAUSTED.
        req.off('data', onData);
        req.off('end', onEnd);
        req.pause();
        fallback(req, res, replay(chunks, req[Symbol.asyncIterator]()));
      }
    };
    const onEnd = () => {
      req.off('data', onData);
      const message = size >= 5 && chunks[0]![0] === 0 && envelopeLength(chunks) === size - 5;
      let input: ReturnType<typeof fromBinary> | undefined;
      if (message) {
        try {
          input = fromBinary(spec.method.input, copyMessage(chunks, size));
        } catch {
          // Malformed: the handler's guard answers INVALID_ARGUMENT through Connect.
        }
      }
      if (input === undefined) fallback(req, res, replay(chunks));
      else void call(spec, req, res, input, timeout.timeoutMs);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    return true;
  };

  async function call(
    spec: UnarySpec,
    req: IncomingMessage,
    res: ServerResponse,
    input: ReturnType<typeof fromBinary>,
    timeoutMs: number | undefined,
  ): Promise<void> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let deadline: number | undefined;
    if (timeoutMs !== undefined) {
      deadline = Date.now() + timeoutMs;
      const expire = () => controller.abort(new ConnectError('the operation timed out', Code.DeadlineExceeded));
      if (timeoutMs <= 0) expire();
      else timer = setTimeout(expire, timeoutMs);
    }
    // As Connect: the client going away aborts the call (an AbortError reason).
    const onClose = () => {
      clearTimeout(timer);
      if (!controller.signal.aborted) controller.abort();
    };
    res.once('close', onClose);
    const context: HandlerContext = {
      method: spec.method,
      service,
      requestMethod: 'POST',
      protocolName: 'grpc-web',
      url: `http://${req.headers.host}${req.url}`,
      timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
      signal: controller.signal,
      requestHeader: webHeaders(req.headers),
      responseHeader: new Headers({ 'content-type': responseContentType }),
      responseTrailer: new Headers({ 'grpc-status': '0' }),
      values: createContextValues(),
    };
    let body: Uint8Array;
    try {
      const output = await invokeUnaryImplementation(spec, context, input, chain);
      const trailer = trailerFrame(context.responseTrailer);
      const message = toBinary(spec.method.output, output);
      body = Buffer.concat([envelope(0, message), trailer]);
      end(controller, timer, callOver);
    } catch (error) {
      end(controller, timer, error);
      const connectError =
        error instanceof ConnectError
          ? error
          : new ConnectError('internal error', Code.Internal, undefined, undefined, error);
      body = envelope(trailerFlag, trailerSerialize(setTrailerStatus(context.responseTrailer, connectError)));
    }
    if (res.destroyed) return;
    res.writeHead(200, nodeHeaders(context.responseHeader));
    res.write(body);
    res.end();
  }
}

/** Stops the deadline timer and aborts the call's signal, as Connect does when a call is over. */
function end(controller: AbortController, timer: NodeJS.Timeout | undefined, reason: unknown): void {
  clearTimeout(timer);
  if (!controller.signal.aborted) controller.abort(reason);
}

/** The trailers frame; the one every successful call without trailers of its own sends is built once. */
function trailerFrame(trailer: Headers): Uint8Array {
  let only = true;
  trailer.forEach((value, key) => {
    if (key !== 'grpc-status' || value !== '0') only = false;
  });
  return only ? okTrailerFrame : envelope(trailerFlag, trailerSerialize(trailer));
}

/** The big-endian length of the first envelope (bytes 1–4 of the body, which may span chunks). */
function envelopeLength(chunks: readonly Buffer[]): number {
  const first = chunks[0]!;
  if (first.byteLength >= 5) return first.readUInt32BE(1);
  return Buffer.concat(chunks).readUInt32BE(1);
}

/**
 * The message bytes (the body after the 5-byte envelope header) in an
 * ArrayBuffer of their own: decoded `bytes` fields are views into it, and a
 * value kept by the memory store must not pin the socket's read buffer
 * (request headers, a pipelined request) that Node's body chunks are views of.
 */
function copyMessage(chunks: readonly Buffer[], size: number): Uint8Array {
  const out = new Uint8Array(size - 5);
  let skip = 5;
  let offset = 0;
  for (const chunk of chunks) {
    const part = skip > 0 ? chunk.subarray(Math.min(skip, chunk.byteLength)) : chunk;
    skip -= chunk.byteLength - part.byteLength;
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** One gRPC envelope: flags (1 byte), length (4 bytes, big-endian), data. */
function envelope(flags: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + data.byteLength);
  out[0] = flags;
  out.writeUInt32BE(data.byteLength, 1);
  out.set(data, 5);
  return out;
}

/** Node's request headers as WHATWG Headers, as `@connectrpc/connect-node` converts them. */
function webHeaders(headers: IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const key in headers) {
    const value = headers[key];
    if (value === undefined || key.startsWith(':')) continue;
    if (typeof value === 'string') out.append(key, value);
    else for (const v of value) out.append(key, v);
  }
  return out;
}

/** WHATWG Headers as the object `writeHead` takes, as `@connectrpc/connect-node` converts them. */
function nodeHeaders(headers: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  headers.forEach((value, key) => {
    const existing = out[key];
    if (existing === undefined) out[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[key] = [existing, value];
  });
  return out;
}

/** The chunks already read, then the rest of the request. */
export async function* replay(
  chunks: readonly Uint8Array[],
  rest?: AsyncIterator<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  yield* chunks;
  if (!rest) return;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}
