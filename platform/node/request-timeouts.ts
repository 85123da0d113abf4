import { type Server, type ServerOptions, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { CacheError } from '../../shared/errors.ts';

/**
 * `node:http` server options that cut slow clients (slowloris, trickled
 * bodies): the whole request — headers and body — must arrive within
 * `requestTimeoutMs`, the headers within min(`requestTimeoutMs`, 10 s). Node
 * answers `408 Request Timeout` and closes the connection. The check runs
 * every second instead of Node's default 30 s, so a cut comes at most about
 * a second late. Responses (e.g. the purge stream) are not limited. Node-only.
 */
export function requestTimeouts(requestTimeoutMs: number): ServerOptions {
  return {
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(requestTimeoutMs, 10_000),
    connectionsCheckingInterval: 1_000,
  };
}

/**
 * Makes the HTTP/1.1 parser's own refusals answer with the documented error
 * envelope instead of Node's bare status line: headers over the size limit →
 * 431 `CACHE_004`, a request not received within the timeouts above → 408
 * `CACHE_005`, anything unparseable → 400 `CACHE_004`. The connection is
 * closed after the answer (Node's `clientError` contract). Node-only.
 */
export function answerClientErrorsWithEnvelope(server: Pick<Server, 'on'>): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const refusal =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? new CacheError('CACHE_004', 'Request headers too large', { status: 431 })
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new CacheError('CACHE_005', 'Request not received in time', { status: 408 })
          : new CacheError('CACHE_004', 'Malformed HTTP request');
    const body = JSON.stringify(refusal.toEnvelope());
    socket.end(
      `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
