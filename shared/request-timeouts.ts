import type { ServerOptions } from 'node:http';

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
