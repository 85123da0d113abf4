import type { IncomingMessage, ServerResponse } from 'node:http';
import { fromBinary } from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  createConnectRouter,
  createContextKey,
  createContextValues,
  type Interceptor,
} from '@connectrpc/connect';
import type { UniversalHandler, UniversalServerRequest } from '@connectrpc/connect/protocol';
import {
  compressionBrotli,
  compressionGzip,
  type connectNodeAdapter,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from '@connectrpc/connect-node';
import { CacheService as CacheServiceDesc } from '../../gen/strata/cache/v1/cache_pb.js';
import type { Verifier } from '../../shared/auth.ts';
import type { RequestLog } from '../../shared/http.ts';
import { grpcAuthInterceptor } from './auth.ts';
import { callLogInterceptor } from './call-log.ts';
import { errorCodeMetadata, toConnectError } from './errors.ts';
import { type GrpcServiceDeps, grpcCacheService } from './service.ts';
import { createUnaryFastPath, replay } from './unary-fast.ts';

/** A request handler for `node:http` and `node:http2` servers alike. */
export type NodeHandlerFn = ReturnType<typeof connectNodeAdapter>;

/** Path prefix of every RPC: `/strata.cache.v1.CacheService/<Method>`. */
export const rpcPathPrefix = `/${CacheServiceDesc.typeName}/`;

/** Options of {@link createGrpcHandler}. */
export interface GrpcHandlerOptions extends GrpcServiceDeps {
  /** Largest value, bytes (`MAX_VALUE_BYTES`); a larger value is RESOURCE_EXHAUSTED (CACHE_003), as in REST. */
  readonly maxValueBytes: number;
  /** Unexpected (non-CacheError) failures, for the log. */
  readonly onUnexpectedError?: (error: unknown) => void;
  /** JWT verifier (docs/security.md); absent or null = authentication off. */
  readonly auth?: Verifier | null;
  /** One record per call (the REST request log's format). */
  readonly log?: RequestLog;
  /**
   * Answer unary binary gRPC-web calls over HTTP/1.1 without Connect's
   * streaming pipeline (`unary-fast.ts`), with the same bytes; default true.
   * Turn it off when tracing is on: the fast path reads the body from
   * events, outside the span's context.
   */
  readonly unaryFastPath?: boolean;
}

/** Why a request body did not parse, when it did not; set by {@link guardMalformed}. */
const malformedBody = createContextKey<string | undefined>(undefined, { description: 'malformed protobuf body' });

/**
 * One Node request handler serving `strata.cache.v1.CacheService` over gRPC,
 * gRPC-web and the Connect protocol (JSON or binary), for `http` and `http2`
 * servers alike. Requests outside {@link rpcPathPrefix} get 404.
 *
 * - Errors: the ICD → gRPC table of ARCHITECTURE.md §2 (`errors.ts`), with the
 *   ICD code in the `x-cache-error-code` trailer.
 * - A malformed protobuf body is INVALID_ARGUMENT (CACHE_004): Connect alone
 *   would answer INTERNAL for a body that fails to decode.
 * - Messages are limited to max(2 × `maxValueBytes`, 8 MiB), the REST limit
 *   of JSON batch bodies; larger ones are RESOURCE_EXHAUSTED.
 * - Deadlines: `grpc-timeout` / `connect-timeout-ms` abort the call with
 *   DEADLINE_EXCEEDED (see `untilAborted`).
 */
export function createGrpcHandler(options: GrpcHandlerOptions): NodeHandlerFn {
  const readMaxBytes = Math.max(options.maxValueBytes * 2, 8 * 1024 * 1024);
  const mapErrors: Interceptor = (next) => async (req) => {
    const malformed = req.contextValues.get(malformedBody);
    if (malformed !== undefined) {
      throw new ConnectError(`malformed protobuf body: ${malformed}`, Code.InvalidArgument, {
        [errorCodeMetadata]: 'CACHE_004',
      });
    }
    try {
      return await next(req);
    } catch (error) {
      throw toConnectError(error, options.onUnexpectedError);
    }
  };
  // mapErrors outermost, so auth failures leave as UNAUTHENTICATED / PERMISSION_DENIED.
  // The call log outermost, so it records the mapped error.
  const interceptors: Interceptor[] = [
    ...(options.log ? [callLogInterceptor(options.log)] : []),
    mapErrors,
    ...(options.auth
      ? [
          grpcAuthInterceptor(options.auth, (operation, _code, seconds) =>
            options.metrics?.request(operation, 'none', 'refused', seconds),
          ),
        ]
      : []),
  ];
  const router = createConnectRouter({
    interceptors,
    readMaxBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  const impl = grpcCacheService(options);
  router.service(CacheServiceDesc, impl);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));

  /** Connect's path; `body` replaces the request's body when the fast path already read part of it. */
  const viaConnect = (req: IncomingMessage, res: ServerResponse, body?: AsyncIterable<Uint8Array>): void => {
    const handler = handlers.get(req.url?.split('?', 1)[0] ?? '');
    if (!handler) {
      res.writeHead(404);
      res.end();
      return;
    }
    const uReq = universalRequestFromNodeRequest(req, res, undefined, createContextValues());
    guardMalformed(handler, body ? { ...uReq, body } : uReq, readMaxBytes)
      .then((guarded) => handler(guarded))
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((error) => {
        // Aborted: the client went away; nothing to answer.
        if (ConnectError.from(error).code !== Code.Aborted) options.onUnexpectedError?.(error);
      });
  };
  if (options.unaryFastPath === false) return viaConnect as NodeHandlerFn;
  const fast = createUnaryFastPath({
    service: CacheServiceDesc,
    impl,
    interceptors,
    readMaxBytes,
    fallback: viaConnect,
  });
  return ((req: IncomingMessage, res: ServerResponse) => {
    // HTTP/2 requests never match the fast path (it takes HTTP/1.x only).
    if (!fast(req, res)) viaConnect(req, res);
  }) as NodeHandlerFn;
}

const framedTypes = /^application\/grpc(-web)?(\+proto)?$/i;
const connectBinaryType = /^application\/proto$/i;

/**
 * Decodes an uncompressed binary request once before Connect does. When it
 * does not decode, the request goes on with an empty message and the reason
 * in {@link malformedBody}, so the interceptor answers INVALID_ARGUMENT in
 * whatever protocol the client spoke. Compressed, JSON, text and oversized
 * bodies pass through unchanged (Connect's own checks apply).
 */
async function guardMalformed(
  handler: UniversalHandler,
  req: UniversalServerRequest,
  readMaxBytes: number,
): Promise<UniversalServerRequest> {
  const type = (req.header.get('content-type') ?? '').split(';', 1)[0]!.trim();
  const framed = framedTypes.test(type);
  const connectBinary = connectBinaryType.test(type) && !req.header.get('content-encoding');
  const body = req.body;
  if ((!framed && !connectBinary) || !isAsyncIterable(body)) return req;

  const it = body[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let done = false;
  while (size <= readMaxBytes + 5) {
    const next = await it.next();
    if (next.done) {
      done = true;
      break;
    }
    chunks.push(next.value);
    size += next.value.byteLength;
  }
  if (!done) return { ...req, body: replay(chunks, it) };

  const bytes = Buffer.concat(chunks);
  let message: Uint8Array = bytes;
  if (framed) {
    // One uncompressed envelope (flags 0, 4-byte big-endian length) or leave it to Connect.
    if (bytes.byteLength < 5 || bytes[0] !== 0 || bytes.readUInt32BE(1) !== bytes.byteLength - 5) {
      return { ...req, body: replay(chunks) };
    }
    message = bytes.subarray(5);
  }
  try {
    fromBinary(handler.method.input, message);
    return { ...req, body: replay(chunks) };
  } catch (error) {
    req.contextValues?.set(malformedBody, error instanceof Error ? error.message : String(error));
    return { ...req, body: replay(framed ? [new Uint8Array(5)] : []) };
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}
