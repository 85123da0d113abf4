/**
 * `npm run admin -- flush NAMESPACE`, `... stats [NAMESPACE]`, `... version NAMESPACE`, `... reload`:
 * the management operations from a shell, through the typed client
 * (`client/admin.ts`). The origin (or an edge) comes from `--origin` or
 * `ORIGIN_URL` (default `http://127.0.0.1:8080`); the bearer token from
 * `--token` or `STRATA_TOKEN`. Prints the JSON answer.
 *
 * Exit codes: 0 done, 1 refused or failed (the error code and message on stderr), 2 bad arguments.
 */
import { parseArgs } from 'node:util';
import { AdminClientError, createAdminClient } from '../client/admin.ts';

const usage = `usage: npm run admin -- (flush NAMESPACE | stats [NAMESPACE] | version NAMESPACE | reload)
         [--origin URL] [--token JWT]`;

function fail(message: string, code: number): never {
  process.stderr.write(`admin: ${message}\n`);
  process.exit(code);
}

let parsed: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      origin: { type: 'string' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
}
try {
  parsed = parse();
} catch (error) {
  fail(`${(error as Error).message}\n${usage}`, 2);
}
if (parsed.values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const [command, namespace, ...extra] = parsed.positionals;
const client = createAdminClient({
  baseUrl: parsed.values.origin ?? process.env.ORIGIN_URL ?? 'http://127.0.0.1:8080',
  token: parsed.values.token ?? process.env.STRATA_TOKEN,
});
const needsNamespace = command === 'flush' || command === 'version';
if (extra.length > 0 || (needsNamespace && !namespace) || (command === 'reload' && namespace)) fail(usage, 2);

try {
  const result =
    command === 'flush'
      ? await client.flush(namespace!)
      : command === 'version'
        ? await client.version(namespace!)
        : command === 'stats'
          ? namespace
            ? await client.stats(namespace)
            : await client.statsAll()
          : command === 'reload'
            ? await client.reload()
            : fail(usage, 2);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} catch (error) {
  if (error instanceof AdminClientError) fail(`${error.code} (HTTP ${error.status}): ${error.message}`, 1);
  fail((error as Error).message, 1);
}
