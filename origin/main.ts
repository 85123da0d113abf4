/**
 * `npm run start:origin`: the origin alone, configured by the env vars of
 * ARCHITECTURE.md §3. A bad variable stops the process with one line naming it.
 */

import { startTracing } from '../platform/node/tracing.ts';
import { originConfigSchema, parseConfig } from '../shared/config.ts';
import { envWithConfigFile } from './reload.ts';
import { startOrigin } from './server.ts';

let config: ReturnType<typeof parseConfig<typeof originConfigSchema>>;
try {
  config = parseConfig(originConfigSchema, await envWithConfigFile(process.env));
} catch (error) {
  process.stderr.write(`strata-origin: ${(error as Error).message}\n`);
  process.exit(2);
}
// Before the apps are built: they decide once whether to open spans.
const tracing = startTracing({
  serviceName: config.OTEL_SERVICE_NAME ?? 'strata-origin',
  endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const origin = await startOrigin(config, { reloadEnv: () => envWithConfigFile(process.env) });
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
