import { createServer, type IncomingMessage, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { getRequestListener } from '@hono/node-server';
import pino, { type Logger } from 'pino';
import { requestBody } from '../../../platform/node/request-body.ts';
import { answerClientErrorsWithEnvelope, requestTimeouts } from '../../../platform/node/request-timeouts.ts';
import type { EdgeConfig } from '../../../shared/config.ts';
import { pinoRequestLog } from '../../../shared/request-log.ts';
import { buildEdge } from '../../build-edge.ts';
import type { EdgeCache } from '../../core/edge-cache.ts';
import type { PurgeSubscription } from '../../core/purge-source.ts';
import { edgeIdOf } from '../../edge-id.ts';
import type { FastHit, HitAnswer } from '../../fast-hit.ts';
import type { OriginTransport } from '../../origin-transport.ts';
import { collectionPace, fillCollector } from './fill-collector.ts';
import { edgeNodeMetrics } from './metrics.ts';
import { undiciOriginTransport } from './origin-transport.ts';
import { type StatsReporter, startStatsReporter } from './stats-reporter.ts';

/** A running Node edge. */
export interface RunningEdge {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  readonly cache: EdgeCache;
  readonly subscription: PurgeSubscription;
  /** Origin loads so far (after coalescing). */
  readonly originLoads: number;
  /** Stops the purge subscription and the server. */
  close(): Promise<void>;
}

/**
 * A `node:http` request listener that answers fresh edge hits itself
 * (`edge/fast-hit.ts`: no WHATWG `Request`/`Response`, no Hono context) and
 * hands every other request to `app` (`@hono/node-server`'s listener over the
 * Hono app) untouched.
 */
export function fastHitListener(fastHit: FastHit | undefined, app: RequestListener): RequestListener {
  if (!fastHit) return app;
  return (req, res) => {
    let answer: HitAnswer | undefined;
    try {
      answer = fastHit(req.method ?? '', req.url ?? '', req, nodeHeader);
    } catch {
      // Never an uncaught exception in the server's 'request' event: the app answers (or envelopes) it instead.
      answer = undefined;
    }
    if (!answer) return app(req, res);
    const { body } = answer;
    if (body) answer.headers['Content-Length'] = String(body.byteLength);
    res.writeHead(answer.status, answer.headers);
    res.end(body ?? undefined);
  };
}

/** Full collections paced by origin bodies read (`EDGE_GC_EVERY_BYTES`, `./fill-collector.ts`); none when 0 (the default). */
function collectingFills(config: EdgeConfig): { onBody?: (bodyBytes: number) => void } {
  const every = collectionPace(config.EDGE_GC_EVERY_BYTES, config.EDGE_MAX_BYTES);
  return every > 0 ? { onBody: fillCollector(every) } : {};
}

/**
 * A request header as the app reads it through `@hono/node-server`: Node's
 * joined value, but `Authorization`, whose repeats Node drops (it keeps the
 * first) and the app joins with `", "`.
 */
function nodeHeader(req: IncomingMessage, name: string): string | undefined {
  if (name !== 'authorization') {
    const value = req.headers[name];
    return typeof value === 'string' ? value : undefined;
  }
  const raw = req.rawHeaders;
  let joined: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 13 && n.toLowerCase() === 'authorization') {
      joined = joined === undefined ? raw[i + 1]! : `${joined}, ${raw[i + 1]!}`;
    }
  }
  return joined;
}

/**
 * Starts a Node edge (`node:http`, the hit fast path, then `@hono/node-server`): the edge `buildEdge` wires, with
 * the purge stream, Prometheus metrics and a pino log; listens on
 * `EDGE_HOST:EDGE_PORT` (0 = a free port) and reports its counters to the
 * origin's dashboard every `EDGE_STATS_INTERVAL_SECONDS`. Entry reads and
 * writes reach the origin over undici's `request` (`origin-transport.ts`)
 * unless `originTransport` says otherwise. Used by `npm run start:edge`,
 * `npm start`, tests and benchmarks.
 */
export async function startEdge(
  config: EdgeConfig,
  options: { logger?: Logger; originTransport?: OriginTransport } = {},
): Promise<RunningEdge> {
  const logger = options.logger ?? pino({ level: config.LOG_LEVEL, name: 'strata-edge' });
  // One id in every report to the origin (stats and applied positions); without EDGE_ID it names the port,
  // known once listening: an applied-position report sent before then waits for it.
  const edgeId = Promise.withResolvers<string>();
  edgeId.promise.catch(() => {});
  const edge = buildEdge(config, {
    purgeSource: 'stream',
    metrics: edgeNodeMetrics,
    logger,
    requestLog: pinoRequestLog(logger),
    originTransport: options.originTransport ?? undiciOriginTransport(undefined, collectingFills(config)),
    // A write's value straight from the socket into one buffer of its Content-Length.
    readBody: requestBody,
    edgeId: edgeId.promise,
  });
  const server = createServer(
    requestTimeouts(config.REQUEST_TIMEOUT_MS),
    fastHitListener(edge.fastHit, getRequestListener(edge.app.fetch, { hostname: config.EDGE_HOST })),
  );
  await new Promise<void>((resolve, reject) => {
    // A bind failure (EADDRINUSE) rejects instead of crashing as an unhandled 'error' event.
    server.once('error', reject);
    server.listen(config.EDGE_PORT, config.EDGE_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: unknown) => {
    edge.close();
    edgeId.reject(error);
    throw error;
  });
  server.keepAliveTimeout = 65_000;
  answerClientErrorsWithEnvelope(server);
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.EDGE_HOST}:${port}`;
  const id = edgeIdOf(config.EDGE_ID, hostname(), port);
  edgeId.resolve(id);
  logger.info({ url, origin: config.ORIGIN_URL }, 'edge listening');
  let reporter: StatsReporter | undefined;
  if (config.EDGE_STATS_INTERVAL_SECONDS > 0 && edge.metrics) {
    reporter = startStatsReporter({
      registry: edge.metrics.registry,
      originUrl: config.ORIGIN_URL,
      edgeId: id,
      intervalMs: config.EDGE_STATS_INTERVAL_SECONDS * 1000,
      timeoutMs: config.EDGE_ORIGIN_TIMEOUT_MS,
      onError: (error) => logger.debug({ err: error }, 'stats report not taken'),
      token: config.EDGE_ORIGIN_TOKEN,
    });
  }
  return {
    url,
    port,
    cache: edge.cache,
    subscription: edge.subscription,
    get originLoads() {
      return edge.originLoads;
    },
    async close() {
      reporter?.stop();
      edge.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
