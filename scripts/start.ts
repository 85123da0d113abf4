/**
 * `npm start`: one origin and one edge on embedded defaults (in-memory
 * store, in-process invalidation; no Redis or Kafka needed), both URLs and a
 * ready-to-paste curl session on stdout, clean stop on Ctrl-C.
 *
 * The same env vars as `start:origin` / `start:edge` apply (ARCHITECTURE.md §3).
 */
import { startEdge } from '../edge/server.ts';
import { startOrigin } from '../origin/server.ts';
import { edgeConfigSchema, originConfigSchema, parseConfig } from '../shared/config.ts';

let originConfig: ReturnType<typeof parseConfig<typeof originConfigSchema>>;
let edgeConfig: ReturnType<typeof parseConfig<typeof edgeConfigSchema>>;
try {
  originConfig = parseConfig(originConfigSchema, process.env);
  const originUrl = `http://${originConfig.ORIGIN_HOST}:${originConfig.ORIGIN_PORT}`;
  edgeConfig = parseConfig(edgeConfigSchema, { ORIGIN_URL: originUrl, ...process.env });
} catch (error) {
  process.stderr.write(`strata: ${(error as Error).message}\n`);
  process.exit(2);
}

const origin = await startOrigin(originConfig);
const edge = await startEdge({ ...edgeConfig, ORIGIN_URL: origin.url });

const e = edge.url;
process.stdout.write(`
Strata is running.
  origin: ${origin.url}   (store: ${origin.store.kind})
  edge:   ${e}

Try it:
  curl -i -X PUT --data-binary 'hello, strata' -H 'Content-Type: text/plain' '${e}/api/v1/cache/demo/greeting?ttl=300'
  curl -i ${e}/api/v1/cache/demo/greeting      # X-Cache: HIT, X-Cache-Tier: edge
  curl -i -X DELETE ${e}/api/v1/cache/demo/greeting
  curl -s ${origin.url}/metrics | grep strata_

Press Ctrl-C to stop.
`);

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\nstrata: ${signal}, stopping edge and origin\n`);
  await edge.close();
  await origin.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
