/**
 * `npm run token -- --scope "cache:read cache:write" --ns character [--ttl SECONDS] [--service-id ID]`
 *
 * Mints an HS256 JWT (RFC 7519) with Strata's claims (`service_id`, `scope`,
 * `ns`; docs/security.md) for operators and tests, printed alone on stdout so
 * `export STRATA_TOKEN=$(npm run -s token -- …)` works.
 *
 * The secret is `AUTH_JWT_SECRET` (with `AUTH_ISSUER` / `AUTH_AUDIENCE`
 * when set, as the servers check them); without it, the development secret
 * `npm start` keeps in `.strata/dev-secret`. A deployment on a JWKS has no
 * shared secret: its tokens come from the identity provider.
 *
 * Defaults: every scope, every namespace (`*`), one hour, service id `cli`.
 * Exit codes: 0 printed, 2 bad arguments or no secret.
 */
import { type Scope, scopes } from '../shared/auth.ts';
import { parseCli } from './lib/cli.ts';
import { devIssuer, devSecretPath, readDevSecret, signServiceToken } from './lib/dev-auth.ts';

const usage = `usage: npm run token -- [--scope "cache:read cache:write"] [--ns ns1,ns2|*] [--ttl SECONDS] [--service-id ID]
scopes: ${scopes.join(' ')}`;

function fail(message: string): never {
  process.stderr.write(`token: ${message}\n`);
  process.exit(2);
}

const args = parseCli('token', usage, {
  scope: { type: 'string', default: scopes.join(' ') },
  ns: { type: 'string', default: '*' },
  ttl: { type: 'string', default: '3600' },
  'service-id': { type: 'string', default: 'cli' },
});

const words = (s: string) => s.split(/[\s,]+/).filter(Boolean);
const requested = words(args.scope);
const unknown = requested.filter((s) => !(scopes as readonly string[]).includes(s));
if (requested.length === 0 || unknown.length > 0)
  fail(`--scope: unknown scope ${unknown.join(', ') || '(none)'}\n${usage}`);
const namespaces = words(args.ns);
if (namespaces.length === 0 || !namespaces.every((n) => n === '*' || /^[a-z0-9_-]{1,64}$/.test(n))) {
  fail(`--ns: expected namespaces matching [a-z0-9_-]{1,64} or *, got "${args.ns}"`);
}
const ttlSeconds = Number(args.ttl);
if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) fail(`--ttl: expected whole seconds ≥ 1, got "${args.ttl}"`);

const envSecret = process.env.AUTH_JWT_SECRET || undefined;
const secret = envSecret ?? readDevSecret();
if (!secret) {
  fail(
    process.env.AUTH_JWKS_URL
      ? 'AUTH_JWKS_URL is set: tokens come from your identity provider, not from a shared secret'
      : `no secret: set AUTH_JWT_SECRET, or run \`npm start\` once in development mode (it writes ${devSecretPath})`,
  );
}
const token = await signServiceToken(
  secret,
  {
    serviceId: args['service-id'],
    scope: requested as Scope[],
    ns: namespaces,
    issuer: envSecret ? process.env.AUTH_ISSUER || undefined : devIssuer,
    audience: envSecret ? process.env.AUTH_AUDIENCE || undefined : undefined,
  },
  ttlSeconds,
);
process.stdout.write(`${token}\n`);
