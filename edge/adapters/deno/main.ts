/**
 * `npm run start:edge:deno`: one Deno edge, configured by the same
 * environment variables as the Node edge (README). The same Hono app
 * `buildEdge` wires, served by `Deno.serve`, following the purge stream
 * (SSE), with Prometheus text metrics (`edge/text-metrics.ts`; prom-client
 * needs Node) and a JSON-lines log on stderr. SIGINT/SIGTERM stop the purge
 * subscription, let requests in flight finish and exit 0.
 *
 * Prints one line `{"msg":"edge listening","url":…}` on stdout once it
 * listens, so a supervisor (or a test) can learn the port when `EDGE_PORT=0`.
 */
import { edgeConfigSchema, parseConfig } from '../../../shared/config.ts';
import { buildEdge } from '../../build-edge.ts';
import { edgeIdOf } from '../../edge-id.ts';
import { textEdgeMetrics } from '../../text-metrics.ts';
import { fastHitHandler } from './fast-hit.ts';
import { jsonLinesLogger } from './logger.ts';

let config: ReturnType<typeof parseConfig<typeof edgeConfigSchema>>;
try {
  // Read the environment once, here; the same zod schema parses it as on Node.
  config = parseConfig(edgeConfigSchema, Deno.env.toObject());
} catch (error) {
  console.error(`strata-edge: ${(error as Error).message}`);
  Deno.exit(2);
}
const logger = jsonLinesLogger(config.LOG_LEVEL, 'strata-edge');
// Named as a Node edge is (`edge/edge-id.ts`): EDGE_ID, else host:port, known once listening; an
// applied-position report sent before then waits for it.
const edgeId = Promise.withResolvers<string>();
const edge = buildEdge(config, { purgeSource: 'stream', metrics: textEdgeMetrics, logger, edgeId: edgeId.promise });
const server = Deno.serve(
  {
    port: config.EDGE_PORT,
    hostname: config.EDGE_HOST,
    onListen: ({ hostname, port }) => {
      edgeId.resolve(edgeIdOf(config.EDGE_ID, machineName(hostname), port));
      const url = `http://${hostname}:${port}`;
      console.log(JSON.stringify({ msg: 'edge listening', url, origin: config.ORIGIN_URL }));
    },
  },
  fastHitHandler(edge.fastHit, edge.app.fetch),
);

/** The machine's host name when `--allow-sys=hostname` grants it (asked first: never a prompt), else the address listened on. */
function machineName(listening: string): string {
  try {
    if (Deno.permissions.querySync({ name: 'sys', kind: 'hostname' }).state === 'granted') return Deno.hostname();
  } catch {
    // A runtime without the permission API or the call: the address stands in.
  }
  return listening;
}

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.error(`strata-edge: ${signal}, shutting down`);
  edge.close();
  await server.shutdown();
  Deno.exit(0);
};
Deno.addSignalListener('SIGINT', () => void stop('SIGINT'));
Deno.addSignalListener('SIGTERM', () => void stop('SIGTERM'));
