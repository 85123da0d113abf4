/**
 * `npm run start:origin`: the origin alone, configured by the env vars of the
 * README's configuration table. A bad variable stops the process with one
 * line naming it (exit 2); a failure to start (port in use, Redis required
 * and unreachable, production without auth) with one line naming the
 * variable or port and what to do (exit 1). The stack only at `LOG_LEVEL=debug`.
 */

import { exitOnStartupFailure } from '../platform/node/startup-failure.ts';
import { startTracing } from '../platform/node/tracing.ts';
import { originConfigSchema, parseConfig } from '../shared/config.ts';
import { envWithConfigFile } from './reload.ts';
import { startOrigin } from './server.ts';

let config: ReturnType<typeof parseConfig<typeof originConfigSchema>>;
try {
  config = parseConfig(originConfigSchema, await envWithConfigFile(process.env));
} catch (error) {
  exitOnStartupFailure('strata-origin', error, { code: 2, debug: process.env.LOG_LEVEL === 'debug' });
}
// Before the apps are built: they decide once whether to open spans.
const tracing = startTracing({
  serviceName: config.OTEL_SERVICE_NAME ?? 'strata-origin',
  endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const origin = await startOrigin(config, { reloadEnv: () => envWithConfigFile(process.env) }).catch((error: unknown) =>
  exitOnStartupFailure('strata-origin', error, {
    ports: { ORIGIN_PORT: config.ORIGIN_PORT },
    debug: config.LOG_LEVEL === 'debug',
  }),
);
// SIGHUP re-reads the run-time configuration (and STRATA_CONFIG_FILE); an invalid one is refused and logged.
process.on('SIGHUP', () => {
  origin.reload().then(
    (result) => process.stderr.write(`strata-origin: SIGHUP, reloaded ${JSON.stringify(result)}\n`),
    (error: Error) => process.stderr.write(`strata-origin: SIGHUP, reload refused: ${error.message}\n`),
  );
});
let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`strata-origin: ${signal}, shutting down\n`);
  await origin.close();
  await tracing?.shutdown();
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
