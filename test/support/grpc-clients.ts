import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * Real gRPC clients for tests of the origin's `strata.cache.v1.CacheService`:
 * @grpc/grpc-js over plain HTTP/2 (h2c, the .proto loaded at run time with
 * @grpc/proto-loader, no generated code), and `buf curl` in a child process.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const protoDir = `${root}proto`;
const bufBin = `${root}node_modules/.bin/buf`;

/** A unary reply of grpc-js, with the response header metadata. */
export interface GrpcReply<T> {
  readonly message: T;
  readonly header: grpc.Metadata;
}

/** A grpc-js client of the service with promise-returning calls. */
export interface GrpcJsClient {
  /**
   * Calls `method` (e.g. `Get`); rejects with a grpc-js `ServiceError`
   * (`code`, `details`, `metadata` = trailers) on a non-OK status.
   * @param deadlineMs relative deadline in milliseconds, sent as `grpc-timeout`.
   */
  call<T = Record<string, unknown>>(method: string, request: object, deadlineMs?: number): Promise<GrpcReply<T>>;
  close(): void;
}

/** Opens an insecure channel (h2c with prior knowledge) to `127.0.0.1:port`. */
export function grpcJsClient(port: number): GrpcJsClient {
  const definition = protoLoader.loadSync('strata/cache/v1/cache.proto', {
    includeDirs: [protoDir],
    longs: Number,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    strata: { cache: { v1: { CacheService: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.strata.cache.v1.CacheService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  type UnaryFn = (
    request: object,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, message: unknown) => void,
  ) => grpc.ClientUnaryCall;
  const methods = client as unknown as Record<string, UnaryFn>;
  return {
    call<T>(method: string, request: object, deadlineMs?: number) {
      return new Promise<GrpcReply<T>>((resolve, reject) => {
        let header = new grpc.Metadata();
        const options: grpc.CallOptions = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
        const fn = methods[method]!;
        const call = fn.call(client, request, new grpc.Metadata(), options, (error, message) =>
          error ? reject(error) : resolve({ message: message as T, header }),
        );
        call.on('metadata', (m: grpc.Metadata) => {
          header = m;
        });
      });
    },
    close: () => client.close(),
  };
}

/** What `buf curl` printed and how it exited. */
export interface BufCurlResult {
  /** 0 on an OK status. */
  readonly exitCode: number;
  /** The response message as protobuf JSON (bytes are base64), when OK. */
  readonly json: Record<string, unknown> | undefined;
  /** On an error status, buf's JSON error object (`code`, `message`, `details`). */
  readonly error: { code: string; message: string } | undefined;
  readonly stderr: string;
}

/**
 * Runs `buf curl` against `baseUrl` with the schema from `proto/` (no
 * reflection). `protocol` `grpc` uses HTTP/2 prior knowledge; `grpcweb` HTTP/1.1.
 * Asynchronous on purpose: the origin under test runs in this process.
 */
export function bufCurl(
  baseUrl: string,
  protocol: 'grpc' | 'grpcweb' | 'connect',
  method: string,
  body: object,
): Promise<BufCurlResult> {
  const args = ['curl', '--schema', protoDir, '--protocol', protocol, '--data', JSON.stringify(body)];
  if (protocol === 'grpc') args.push('--http2-prior-knowledge');
  args.push(`${baseUrl}/strata.cache.v1.CacheService/${method}`);
  return new Promise((resolve) => {
    execFile(bufBin, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      const exitCode = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      const parse = (text: string) => {
        try {
          return JSON.parse(text);
        } catch {
          return undefined;
        }
      };
      resolve({
        exitCode,
        json: exitCode === 0 ? parse(stdout) : undefined,
        error: exitCode === 0 ? undefined : parse(stderr),
        stderr,
      });
    });
  });
}

/** gRPC-web framing of one message (flags 0, big-endian length), for hand-made requests. */
export function grpcWebFrame(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + message.byteLength);
  new DataView(frame.buffer).setUint32(1, message.byteLength);
  frame.set(message, 5);
  return frame;
}

/**
 * Reads the trailer frame of a gRPC-web response body (flag 0x80) into a
 * header map; `grpc-status` is the call's status.
 */
export function grpcWebTrailers(body: Uint8Array): Map<string, string> {
  const trailers = new Map<string, string>();
  let offset = 0;
  while (offset + 5 <= body.byteLength) {
    const flags = body[offset]!;
    const length = new DataView(body.buffer, body.byteOffset + offset + 1, 4).getUint32(0);
    const payload = body.subarray(offset + 5, offset + 5 + length);
    if (flags & 0x80) {
      for (const line of new TextDecoder().decode(payload).split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) trailers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
    }
    offset += 5 + length;
  }
  return trailers;
}
