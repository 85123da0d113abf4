/**
 * The servers the client suites (TypeScript, Python, Go) run against: an
 * origin on the shared Redis with HS256 auth and encryption keys, an origin
 * whose Redis is a closed port (so reads answer UNAVAILABLE / CACHE_005),
 * and a proxy in front of the first that answers 503 to as many requests as
 * a test arms it for (`POST /__fail?count=N`, 204), or holds the next request
 * for `ms` milliseconds before forwarding it (`POST /__delay?ms=N`, 204).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer } from 'node:net';
import type { RunningOrigin } from '../../origin/server.ts';
import { hs256Issuer } from '../support/jwt.ts';
import { originFor } from '../support/stack.ts';

/** The running stack and the environment the Python and Go suites read. */
export interface ClientsStack {
  readonly origin: RunningOrigin;
  readonly down: RunningOrigin;
  /** `http://127.0.0.1:PORT` of the 503-injecting proxy. */
  readonly flakyUrl: string;
  /** `http://127.0.0.1:PORT` where nothing listens (connection refused). */
  readonly closedUrl: string;
  readonly namespace: string;
  /** A namespace the token does not grant (AUTH_002). */
  readonly otherNamespace: string;
  /** A token granting every scope in `namespace` only. */
  readonly token: string;
  /** Right shape, wrong key (AUTH_001). */
  readonly forgedToken: string;
  /** The origins' MAX_VALUE_BYTES. */
  readonly maxValueBytes: number;
  /** Makes the proxy answer 503 to its next `count` requests. */
  arm(count: number): void;
  /** Makes the proxy hold its next request `ms` milliseconds before forwarding it. */
  delay(ms: number): void;
  /** STRATA_* variables for the Python and Go suites. */
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** An HTTP/1.1 proxy to `targetPort` that answers 503 while armed. */
async function flakyProxy(
  targetPort: number,
): Promise<{ url: string; arm(n: number): void; delay(ms: number): void; server: Server }> {
  let failures = 0;
  let delayMs = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    if (url.pathname === '/__fail') {
      failures = Number(url.searchParams.get('count') ?? '0');
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === '/__delay') {
      delayMs = Number(url.searchParams.get('ms') ?? '0');
      res.writeHead(204).end();
      return;
    }
    if (failures > 0) {
      failures--;
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain' }).end('injected by the test proxy');
      return;
    }
    if (delayMs > 0) {
      // Holds the request past a client's deadline, then forwards it.
      const wait = delayMs;
      delayMs = 0;
      setTimeout(() => forward(req, res), wait);
      return;
    }
    forward(req, res);
  });
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const upstream = request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    arm: (n) => {
      failures = n;
    },
    delay: (ms) => {
      delayMs = ms;
    },
    server,
  };
}

/** Starts the stack on the shared Redis at `redisUrl`. */
export async function clientsStack(redisUrl: string): Promise<ClientsStack> {
  const issuer = hs256Issuer();
  const namespace = `clients${Date.now().toString(36)}`;
  const otherNamespace = `${namespace}-other`;
  const maxValueBytes = 4096;
  const env = {
    ...issuer.env,
    MAX_VALUE_BYTES: String(maxValueBytes),
    ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
  };
  const origin = await originFor({ ...env, REDIS_URL: redisUrl });
  const down = await originFor({
    ...env,
    REDIS_URL: `redis://127.0.0.1:${await closedPort()}`,
    REDIS_CALL_TIMEOUT_MS: '100',
  });
  const proxy = await flakyProxy(origin.port);
  const closedUrl = `http://127.0.0.1:${await closedPort()}`;
  const token = await issuer.sign({ ns: [namespace] });
  const forgedToken = await issuer.forge({ ns: [namespace] });
  return {
    origin,
    down,
    flakyUrl: proxy.url,
    closedUrl,
    namespace,
    otherNamespace,
    token,
    forgedToken,
    maxValueBytes,
    arm: proxy.arm,
    delay: proxy.delay,
    env: {
      STRATA_ORIGIN_URL: origin.url,
      STRATA_NAMESPACE: namespace,
      STRATA_OTHER_NAMESPACE: otherNamespace,
      STRATA_TOKEN: token,
      STRATA_FORGED_TOKEN: forgedToken,
      STRATA_FLAKY_URL: proxy.url,
      STRATA_DOWN_URL: down.url,
      STRATA_CLOSED_URL: closedUrl,
      STRATA_MAX_VALUE_BYTES: String(maxValueBytes),
    },
    async close() {
      proxy.server.closeAllConnections();
      await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
      await Promise.all([origin.close(), down.close()]);
      await issuer.close();
    },
  };
}

/** The value each language writes in the cross-language check (same bytes in every suite): not valid UTF-8. */
export function crossLanguagePayload(lang: string): Uint8Array {
  const head = new TextEncoder().encode(lang);
  const tail = Uint8Array.from([0x00, 0xff, 0xfe, 0xc3, 0x28, ...Array.from({ length: 256 }, (_, i) => i)]);
  return new Uint8Array([...head, ...tail]);
}
