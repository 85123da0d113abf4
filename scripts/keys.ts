/**
 * `npm run keys -- NAMESPACE [--match GLOB] [--count N] [--limit N] [--json]`:
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
import { parseArgs } from 'node:util';
import { AdminClientError, createAdminClient } from '../client/admin.ts';

const usage = `usage: npm run keys -- NAMESPACE [--match GLOB] [--count N] [--limit N] [--json]
         [--origin URL] [--token JWT]`;

function fail(message: string, code: number): never {
  process.stderr.write(`keys: ${message}\n`);
  process.exit(code);
}

function parse() {
  return parseArgs({
    options: {
      match: { type: 'string', default: '*' },
      count: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
      origin: { type: 'string' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
}
let parsed: ReturnType<typeof parse>;
try {
  parsed = parse();
} catch (error) {
  fail(`${(error as Error).message}\n${usage}`, 2);
}
if (parsed.values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const [namespace, ...extra] = parsed.positionals;
if (!namespace || extra.length > 0) fail(usage, 2);
const whole = (name: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(value)) fail(`--${name} must be a positive whole number\n${usage}`, 2);
  return Number(value);
};
const count = whole('count', parsed.values.count);
const limit = whole('limit', parsed.values.limit) ?? Number.POSITIVE_INFINITY;

const client = createAdminClient({
  baseUrl: parsed.values.origin ?? process.env.ORIGIN_URL ?? 'http://127.0.0.1:8080',
  token: parsed.values.token ?? process.env.STRATA_TOKEN,
});
try {
  let printed = 0;
  for await (const key of client.keys(namespace, { match: parsed.values.match, ...(count ? { count } : {}) })) {
    if (printed >= limit) break;
    const line = parsed.values.json
      ? JSON.stringify(key)
      : [key.key, key.size_bytes, Math.ceil(key.ttl_ms / 1000), key.version, key.tags.join(',')].join('\t');
    process.stdout.write(`${line}\n`);
    printed++;
  }
} catch (error) {
  if (error instanceof AdminClientError) fail(`${error.code} (HTTP ${error.status}): ${error.message}`, 1);
  fail((error as Error).message, 1);
}
