/**
 * `npm run start:edge`: one Node edge (self-hosted point of presence),
 * configured by the environment variables in the README. Bad configuration
 * exits 2, a failure to start (port in use) 1, each with one line.
 */

import { exitOnStartupFailure } from '../../../platform/node/startup-failure.ts';
import { startTracing } from '../../../platform/node/tracing.ts';
import { edgeConfigSchema, parseConfig } from '../../../shared/config.ts';
import { startEdge } from './server.ts';

let config: ReturnType<typeof parseConfig<typeof edgeConfigSchema>>;
try {
  config = parseConfig(edgeConfigSchema, process.env);
} catch (error) {
  exitOnStartupFailure('strata-edge', error, { code: 2, debug: process.env.LOG_LEVEL === 'debug' });
}
// Before the apps are built: they decide once whether to open spans.
const tracing = startTracing({
  serviceName: config.OTEL_SERVICE_NAME ?? 'strata-edge',
  endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const edge = await startEdge(config).catch((error: unknown) =>
  exitOnStartupFailure('strata-edge', error, {
    ports: { EDGE_PORT: config.EDGE_PORT },
    debug: config.LOG_LEVEL === 'debug',
  }),
);
let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`strata-edge: ${signal}, shutting down\n`);
  await edge.close();
  await tracing?.shutdown();
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
