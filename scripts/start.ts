/**
 * `npm start`: one origin and one edge on embedded defaults (in-memory
 * store, in-process invalidation; no Redis or Kafka needed), both URLs and a
 * ready-to-paste curl session on stdout, clean stop on Ctrl-C.
 *
 * The same env vars as `start:origin` / `start:edge` apply (ARCHITECTURE.md §3).
 *
 * Authentication: with neither `AUTH_JWT_SECRET` nor `AUTH_JWKS_URL` set,
 * this is development mode — a random HS256 secret for this run, a printed
 * admin token, and a loud notice (docs/security.md). With a secret and no
 * `EDGE_ORIGIN_TOKEN`, the edge's own token is minted from the secret.
 */
import { startEdge } from '../edge/adapters/node/server.ts';
import { startOrigin } from '../origin/server.ts';
import { edgeConfigSchema, originConfigSchema, parseConfig } from '../shared/config.ts';
import { devIssuer, randomDevSecret, signServiceToken } from './lib/dev-auth.ts';

let originConfig: ReturnType<typeof parseConfig<typeof originConfigSchema>>;
let edgeConfig: ReturnType<typeof parseConfig<typeof edgeConfigSchema>>;
const devMode = !process.env.AUTH_JWT_SECRET && !process.env.AUTH_JWKS_URL;
const env: Record<string, string | undefined> = devMode
  ? { ...process.env, AUTH_JWT_SECRET: randomDevSecret(), AUTH_ISSUER: devIssuer, AUTH_AUDIENCE: undefined }
  : process.env;
try {
  originConfig = parseConfig(originConfigSchema, env);
  const originUrl = `http://${originConfig.ORIGIN_HOST}:${originConfig.ORIGIN_PORT}`;
  edgeConfig = parseConfig(edgeConfigSchema, { ORIGIN_URL: originUrl, ...env });
} catch (error) {
  process.stderr.write(`strata: ${(error as Error).message}\n`);
  process.exit(2);
}

const secret = edgeConfig.AUTH_JWT_SECRET;
const claims = { issuer: edgeConfig.AUTH_ISSUER, audience: edgeConfig.AUTH_AUDIENCE };
if (secret && !edgeConfig.EDGE_ORIGIN_TOKEN) {
  edgeConfig = {
    ...edgeConfig,
    EDGE_ORIGIN_TOKEN: await signServiceToken(secret, { serviceId: 'strata-edge', ...claims }, 365 * 24 * 3600),
  };
}
const devToken =
  devMode && secret ? await signServiceToken(secret, { serviceId: 'dev', ...claims }, 24 * 3600) : undefined;

const origin = await startOrigin(originConfig);
const edge = await startEdge({ ...edgeConfig, ORIGIN_URL: origin.url });

const e = edge.url;
// Auth is on in every npm start (dev mode included): the session reads the token from the shell.
const auth = ' -H "Authorization: Bearer $STRATA_TOKEN"';
if (devToken) {
  process.stderr.write(`
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  AUTH IS IN DEVELOPMENT MODE: a random HS256 secret was generated for this !!
!!  run only. Set AUTH_JWT_SECRET or AUTH_JWKS_URL for anything real.        !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
`);
}
process.stdout.write(`
Strata is running.
  origin: ${origin.url}   (store: ${origin.store.kind})
  edge:   ${e}
${devToken ? `\nDev token (all scopes, every namespace, 24 h):\n  export STRATA_TOKEN=${devToken}\n` : ''}
Try it:
  curl -i -X PUT${auth} --data-binary 'hello, strata' -H 'Content-Type: text/plain' '${e}/api/v1/cache/demo/greeting?ttl=300'
  curl -i${auth} ${e}/api/v1/cache/demo/greeting      # X-Cache: HIT, X-Cache-Tier: edge
  curl -i -X DELETE${auth} ${e}/api/v1/cache/demo/greeting
  curl -s${auth} ${origin.url}/metrics | grep strata_

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
