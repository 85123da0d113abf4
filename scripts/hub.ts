/**
 * `npm run hub -- get NAMESPACE KEY`, `... set NAMESPACE KEY VALUE [--ttl S]`,
 * `... delete NAMESPACE KEY`, `... flush NAMESPACE`, `... stats [NAMESPACE]`,
 * `... reload`: cache operations and management through the Message Hub
 * (docs/message-hub.md), with the typed client (`client/hub.ts`). Brokers from
 * `--brokers` or `KAFKA_BROKERS`; the JWT from `--token` or `STRATA_TOKEN`;
 * topic prefix from `--prefix` or `HUB_TOPIC_PREFIX`. Prints the answer as JSON
 * (a get prints the value itself).
 *
 * Exit codes: 0 done, 1 refused, failed or a miss (the code and message on stderr), 2 bad arguments.
 */
import { parseArgs } from 'node:util';
import { createHubClient, HubClientError } from '../client/hub.ts';

const usage = `usage: npm run hub -- (get NS KEY | set NS KEY VALUE | delete NS KEY | flush NS | stats [NS] | reload)
         [--brokers host:port,...] [--token JWT] [--service NAME] [--ttl SECONDS] [--timeout MS] [--prefix P]`;

function fail(message: string, code: number): never {
  process.stderr.write(`hub: ${message}\n`);
  process.exit(code);
}

function parse() {
  return parseArgs({
    options: {
      brokers: { type: 'string' },
      token: { type: 'string' },
      service: { type: 'string', default: 'strata-cli' },
      ttl: { type: 'string' },
      timeout: { type: 'string', default: '5000' },
      prefix: { type: 'string' },
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
const { values, positionals } = parsed;
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const [command, ...args] = positionals;
const arity: Record<string, [number, number]> = {
  get: [2, 2],
  set: [3, 3],
  delete: [2, 2],
  flush: [1, 1],
  stats: [0, 1],
  reload: [0, 0],
};
const expected = command === undefined ? undefined : arity[command];
if (!expected || args.length < expected[0] || args.length > expected[1]) fail(usage, 2);
const brokers = (values.brokers ?? process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean);
if (brokers.length === 0) fail('no brokers: set KAFKA_BROKERS or pass --brokers host:port', 2);
const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0))
  fail('--ttl must be a positive whole number of seconds', 2);
const timeoutMs = Number(values.timeout);
if (!(Number.isInteger(timeoutMs) && timeoutMs > 0))
  fail('--timeout must be a positive whole number of milliseconds', 2);

let client: Awaited<ReturnType<typeof createHubClient>>;
try {
  client = await createHubClient({
    brokers,
    service: values.service!,
    token: values.token ?? process.env.STRATA_TOKEN,
    topicPrefix: values.prefix ?? process.env.HUB_TOPIC_PREFIX ?? '',
    timeoutMs,
  });
} catch (error) {
  fail(`cannot reach Kafka at ${brokers.join(',')}: ${(error as Error).message}`, 1);
}
const [a, b, c] = args as [string, string, string];
try {
  if (command === 'get') {
    const entry = await client.get(a, b);
    if (!entry) fail(`CACHE_001 Key not found: ${a}/${b}`, 1);
    process.stdout.write(`${Buffer.from(entry.value).toString('utf8')}\n`);
  } else {
    const result =
      command === 'set'
        ? await client.set(a, b, c, ttl === undefined ? {} : { ttl })
        : command === 'delete'
          ? await client.delete(a, b)
          : command === 'flush'
            ? await client.flush(a)
            : command === 'stats'
              ? await client.stats(a)
              : await client.reload();
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  }
} catch (error) {
  if (error instanceof HubClientError) fail(`${error.code} ${error.message}`, 1);
  fail((error as Error).message, 1);
} finally {
  await client.close().catch(() => {});
}
