/**
 * `npm start`: one origin and one edge on embedded defaults (in-memory
 * store, in-process invalidation; no Redis or Kafka needed), both URLs, the
 * API reference and dashboard, and commands that work as pasted on stdout;
 * clean stop on Ctrl-C.
 *
 * The same env vars as `start:origin` / `start:edge` apply (README,
 * "Configuration").
 *
 * Authentication: with neither `AUTH_JWT_SECRET` nor `AUTH_JWKS_URL` set,
 * this is development mode — an HS256 secret kept in `.strata/dev-secret`
 * (git-ignored, mode 0600, so `npm run token` signs with it and a restart
 * keeps printed tokens valid), a printed admin token, and a loud notice
 * (docs/security.md). With a secret and no `EDGE_ORIGIN_TOKEN`, the edge's
 * own token is minted from the secret.
 *
 * Exit codes: 2 bad configuration, 1 could not start (one line each).
 */
import { existsSync } from 'node:fs';
import { defaultTracePath } from '../bench/trace.ts';
import { startEdge } from '../edge/adapters/node/server.ts';
import { startOrigin } from '../origin/server.ts';
import { exitOnStartupFailure } from '../platform/node/startup-failure.ts';
import { edgeConfigSchema, originConfigSchema, parseConfig } from '../shared/config.ts';
import { devIssuer, devSecretPath, loadOrCreateDevSecret, signServiceToken } from './lib/dev-auth.ts';

const debug = process.env.LOG_LEVEL === 'debug';
let originConfig: ReturnType<typeof parseConfig<typeof originConfigSchema>>;
let edgeConfig: ReturnType<typeof parseConfig<typeof edgeConfigSchema>>;
const devMode = !process.env.AUTH_JWT_SECRET && !process.env.AUTH_JWKS_URL;
let env: Record<string, string | undefined> = process.env;
try {
  if (devMode) {
    env = { ...env, AUTH_JWT_SECRET: loadOrCreateDevSecret(), AUTH_ISSUER: devIssuer, AUTH_AUDIENCE: undefined };
  }
  originConfig = parseConfig(originConfigSchema, env);
  const originUrl = `http://${originConfig.ORIGIN_HOST}:${originConfig.ORIGIN_PORT}`;
  edgeConfig = parseConfig(edgeConfigSchema, { ORIGIN_URL: originUrl, ...env });
} catch (error) {
  exitOnStartupFailure('strata', error, { code: 2, debug });
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

const origin = await startOrigin(originConfig).catch((error: unknown) =>
  exitOnStartupFailure('strata', error, { ports: { ORIGIN_PORT: originConfig.ORIGIN_PORT }, debug }),
);
const edge = await startEdge({ ...edgeConfig, ORIGIN_URL: origin.url }).catch(async (error: unknown) => {
  await origin.close();
  return exitOnStartupFailure('strata', error, { ports: { EDGE_PORT: edgeConfig.EDGE_PORT }, debug });
});

const e = edge.url;
const o = origin.url;
// Auth is on in every npm start (dev mode included): the commands read the token from the shell.
const auth = ' -H "Authorization: Bearer $STRATA_TOKEN"';
const tokenSteps = devToken
  ? `
Dev token (all scopes, every namespace, 24 h; signed with the secret in ${devSecretPath}):
  export STRATA_TOKEN=${devToken}
More tokens, narrower ones: npm run token -- --scope "cache:read cache:write" --ns demo
`
  : `
Authentication uses your AUTH_JWT_SECRET or AUTH_JWKS_URL: export STRATA_TOKEN=<a token it accepts>
(with AUTH_JWT_SECRET set, \`npm run token\` mints one).
`;
// The sample trace ships beside the repository, not in it: offer the replay only when it is there.
const replay = existsSync(defaultTracePath) ? `  npm run replay -- --edge ${e} --limit 1000\n` : '';
if (devToken) {
  process.stderr.write(`
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  AUTH IS IN DEVELOPMENT MODE: a generated HS256 secret (.strata/dev-secret)
!!  signs every token. Set AUTH_JWT_SECRET or AUTH_JWKS_URL for anything real.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
`);
}
process.stdout.write(`
Strata is running.
  origin:    ${o}   (store: ${origin.store.kind})
  edge:      ${e}
  API docs:  ${o}/docs
  dashboard: ${o}/dashboard   (paste the token below into its token box)
${tokenSteps}
Try it (in a shell where STRATA_TOKEN is exported):
  curl -i -X PUT${auth} --data-binary 'hello, strata' -H 'Content-Type: text/plain' '${e}/api/v1/cache/demo/greeting?ttl=300'
  curl -i${auth} ${e}/api/v1/cache/demo/greeting
  curl -i -X DELETE${auth} ${e}/api/v1/cache/demo/greeting
  curl -s${auth} ${o}/metrics | grep strata_requests_total
  npm run invalidate -- --origin ${o} --namespace demo --keys greeting
${replay}
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
