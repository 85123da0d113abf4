import {
  createServer as createHttp1Server,
  type Server as Http1Server,
  type RequestListener,
  type ServerOptions,
} from 'node:http';
import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { answerClientErrorsWithEnvelope } from '../../platform/node/request-timeouts.ts';
import type { NodeHandlerFn } from './handler.ts';

/** The client connection preface of HTTP/2 (RFC 9113 §3.4). */
const http2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Options of {@link listenSamePort}. */
export interface SamePortOptions {
  /** Everything that is not an RPC: the Hono app (REST, purge stream, health, metrics). */
  readonly rest: RequestListener;
  /** The Connect handler (gRPC, gRPC-web, Connect). */
  readonly rpc: NodeHandlerFn;
  /** True for a request path the {@link SamePortOptions.rpc} handler serves. */
  readonly isRpcPath: (path: string) => boolean;
  /** 0 picks a free port. */
  readonly port: number;
  readonly host: string;
  /** Options of the HTTP/1.1 server, e.g. `requestTimeout` (see `platform/node/request-timeouts.ts`). */
  readonly http1Options?: ServerOptions;
}

/** A listening same-port server. */
export interface SamePortServer {
  readonly port: number;
  /** The HTTP/1.1 server (REST, gRPC-web, Connect); set its timeouts here. */
  readonly http1: Http1Server;
  /** The cleartext HTTP/2 server (gRPC with prior knowledge, and REST over h2c). */
  readonly http2: Http2Server;
  /** Stops accepting and destroys every open connection (purge streams never end by themselves). */
  close(): Promise<void>;
}

/**
 * Serves HTTP/1.1 and cleartext HTTP/2 on one port, as the origin must:
 * REST and gRPC-web clients speak HTTP/1.1, plain gRPC clients (e.g.
 * @grpc/grpc-js on an insecure channel) open h2c with prior knowledge
 * (RFC 9113 §3.3). Each connection's first bytes decide: the HTTP/2 preface
 * goes to an `http2` server, anything else to an `http` server. Both route
 * RPC paths to `rpc` and the rest to `rest`.
 */
export async function listenSamePort(options: SamePortOptions): Promise<SamePortServer> {
  const route = ((req, res) => {
    const path = req.url ?? '/';
    if (options.isRpcPath(path)) options.rpc(req, res);
    else (options.rest as unknown as NodeHandlerFn)(req, res);
  }) as NodeHandlerFn;
  const http1 = createHttp1Server(options.http1Options ?? {}, route as RequestListener);
  answerClientErrorsWithEnvelope(http1);
  const http2 = createHttp2Server(route as unknown as Parameters<typeof createHttp2Server>[0]);
  const sockets = new Set<Socket>();

  // noDelay: a listening http.Server turns Nagle's algorithm off on its sockets; these sockets are
  // handed over by 'connection' instead, so do it here, or small writes (a purge on the SSE stream,
  // a one-line answer) wait for the peer's delayed ACK, up to 40 ms on Linux.
  const server: NetServer = createNetServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const onError = () => socket.destroy();
    socket.on('error', onError);
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = head.byteLength === 0 ? chunk : Buffer.concat([head, chunk]);
      const n = Math.min(head.byteLength, http2Preface.byteLength);
      const prefixMatches = head.subarray(0, n).equals(http2Preface.subarray(0, n));
      // Wait for more bytes only while the connection could still be either protocol.
      if (prefixMatches && n < http2Preface.byteLength) return;
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.pause();
      socket.unshift(head);
      if (prefixMatches) {
        // The HTTP/2 session reads the unshifted bytes itself; resuming would deliver them twice.
        http2.emit('connection', socket);
      } else {
        // The HTTP/1 parser takes the buffered bytes as 'data' events, which need a flowing socket.
        http1.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The servers never listen themselves; 'listening' starts http1's periodic check of
  // headersTimeout / requestTimeout, which a listening http.Server would run.
  http1.emit('listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  return {
    port,
    http1,
    http2,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Stops http1's timeout check; it was never listening, so the callback's error is expected.
      http1.close(() => {});
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
