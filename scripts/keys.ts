/**
 * `npm run keys -- --namespace NS [--match GLOB] [--count N] [--limit N] [--json]`:
 * lists a namespace's keys matching a glob (default `*`), page after page,
 * through the typed client (`client/admin.ts`). One line per key: key, size
 * in bytes, TTL left in seconds, version and tags, tab-separated; `--json`
 * prints one JSON object per line instead. `--limit` stops after that many
 * keys. The origin (or an edge) comes from `--origin` or `ORIGIN_URL`
 * (default `http://127.0.0.1:8080`); the bearer token from `--token` or
 * `STRATA_TOKEN` (scope `cache:read` on the namespace).
 *
 * Exit codes: 0 done, 1 refused or failed (the error code and message on stderr), 2 bad arguments.
 */
import { AdminClientError, createAdminClient } from '../client/admin.ts';
import { parseCli } from './lib/cli.ts';
import { cliToken, tokenOption } from './lib/cli-token.ts';

const usage = `usage: npm run keys -- --namespace NS [--match GLOB] [--count N] [--limit N] [--json]
         [--origin URL] [--token JWT]`;

function fail(message: string, code: number): never {
  process.stderr.write(`keys: ${message}\n`);
  process.exit(code);
}

const values = parseCli('keys', usage, {
  namespace: { type: 'string' },
  match: { type: 'string', default: '*' },
  count: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean', default: false },
  origin: { type: 'string' },
  ...tokenOption,
});
const namespace = values.namespace;
if (!namespace) fail(`--namespace is required\n${usage}`, 2);
const whole = (name: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(value)) fail(`--${name} must be a positive whole number\n${usage}`, 2);
  return Number(value);
};
const count = whole('count', values.count);
const limit = whole('limit', values.limit) ?? Number.POSITIVE_INFINITY;

const client = createAdminClient({
  baseUrl: values.origin ?? process.env.ORIGIN_URL ?? 'http://127.0.0.1:8080',
  token: cliToken(values.token, process.env),
});
try {
  let printed = 0;
  for await (const key of client.keys(namespace, { match: values.match, ...(count ? { count } : {}) })) {
    if (printed >= limit) break;
    const line = values.json
      ? JSON.stringify(key)
      : [key.key, key.size_bytes, Math.ceil(key.ttl_ms / 1000), key.version, key.tags.join(',')].join('\t');
    process.stdout.write(`${line}\n`);
    printed++;
  }
} catch (error) {
  if (error instanceof AdminClientError) fail(`${error.code} (HTTP ${error.status}): ${error.message}`, 1);
  fail((error as Error).message, 1);
}
