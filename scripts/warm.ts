/**
 * `npm run warm -- --file entries.jsonl --namespace character`: starts a warm
 * job on the origin (`POST /api/v1/jobs/warm`, the file streamed as the body),
 * follows it with a progress bar (cli-progress) until it ends, then lists the
 * items that failed. Ctrl-C cancels the job (`DELETE /api/v1/jobs/{id}`).
 *
 * Sources: `--file` with `--format jsonl|csv` (default from the extension:
 * `.csv` is CSV, anything else JSON Lines); `--keys FILE` (one key a line)
 * with `--url-template 'https://data-source/items/{key}'`; `--trace FILE`
 * (a block trace CSV) with `--top N` and `--url-template`. URL sources only
 * fetch from the origin's `WARM_ALLOWED_ORIGINS`.
 *
 * The origin is `--origin` or `ORIGIN_URL` (default `http://127.0.0.1:8080`);
 * the credential `--token` or `STRATA_TOKEN` (`cache:write` in the namespace).
 *
 * Exit codes: 0 every item loaded, 1 some item failed or the job did not
 * finish `done`, 2 bad arguments or the origin refused the job.
 */
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { SingleBar } from 'cli-progress';
import { type WarmJob, warmJobSchema, warmStartedSchema } from '../shared/warm.ts';
import { parseCli } from './lib/cli.ts';
import { bearerHeaders, cliToken, refusedHint, tokenOption } from './lib/cli-token.ts';

const usage = `usage: npm run warm -- --namespace NS (--file entries.jsonl|entries.csv [--format jsonl|csv]
                       | --keys keys.txt --url-template URL | --trace trace.csv --top N --url-template URL)
         [--concurrency N] [--retries N] [--ttl SECONDS] [--origin URL] [--token JWT] [--no-progress]`;

function fail(message: string, code: number): never {
  process.stderr.write(`warm: ${message}\n`);
  process.exit(code);
}

const args = parseCli('warm', usage, {
  namespace: { type: 'string' },
  file: { type: 'string' },
  format: { type: 'string' },
  keys: { type: 'string' },
  trace: { type: 'string' },
  top: { type: 'string' },
  'url-template': { type: 'string' },
  concurrency: { type: 'string' },
  retries: { type: 'string' },
  ttl: { type: 'string' },
  origin: { type: 'string' },
  'no-progress': { type: 'boolean', default: false },
  ...tokenOption,
});

const sources = [args.file, args.keys, args.trace].filter(Boolean);
if (!args.namespace || sources.length !== 1) fail(`give --namespace and one of --file, --keys, --trace\n${usage}`, 2);
const path = sources[0]!;
const format = args.file ? (args.format ?? (path.endsWith('.csv') ? 'csv' : 'jsonl')) : args.keys ? 'keys' : 'trace';
let size: number;
try {
  size = statSync(path).size;
} catch (error) {
  fail(`cannot read ${path}: ${(error as Error).message}`, 2);
}
const query = new URLSearchParams({ namespace: args.namespace, format });
for (const [flag, name] of [
  ['url-template', 'url_template'],
  ['top', 'top'],
  ['concurrency', 'concurrency'],
  ['retries', 'retries'],
  ['ttl', 'ttl'],
] as const) {
  const value = args[flag];
  if (value !== undefined) query.set(name, value);
}
const origin = (args.origin ?? process.env.ORIGIN_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const token = cliToken(args.token, process.env);
const auth = bearerHeaders(token);

let id: string;
try {
  const res = await fetch(`${origin}/api/v1/jobs/warm?${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size), ...auth },
    body: Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>,
    duplex: 'half',
  } as RequestInit);
  const text = await res.text();
  if (res.status !== 202)
    fail(`origin ${origin} answered HTTP ${res.status}${refusedHint(res.status, token)}: ${text}`, 2);
  id = warmStartedSchema.parse(JSON.parse(text)).id;
} catch (error) {
  fail(`could not start the job at ${origin}: ${error instanceof Error ? error.message : String(error)}`, 2);
}
process.stderr.write(`warm job ${id} (${format} from ${path}) → ${origin}/api/v1/jobs/${id}\n`);

const interactive = !args['no-progress'];
const bar = new SingleBar({
  format: ' {bar} {percentage}% | {done} loaded, {failed} failed | {rate}/s | {mb} MB | ETA {eta_s}',
  barCompleteChar: '█',
  barIncompleteChar: '░',
  hideCursor: true,
  noTTYOutput: true,
  notTTYSchedule: 2_000,
  etaBuffer: 1,
});
// The bar counts items when their number is known, else bytes of the input read.
const scale = (j: WarmJob) =>
  j.total !== null
    ? { value: j.done + j.failed, total: Math.max(j.total, 1) }
    : { value: j.input_bytes, total: Math.max(j.input_total_bytes ?? size, 1) };
const payload = (j: WarmJob) => ({
  done: j.done,
  failed: j.failed,
  rate: Math.round(j.rate_per_second),
  mb: (j.bytes / 1e6).toFixed(1),
  eta_s: j.eta_seconds === null ? '-' : `${Math.ceil(j.eta_seconds)}s`,
});

const read = async (): Promise<WarmJob> => {
  const res = await fetch(`${origin}/api/v1/jobs/${id}`, { headers: auth });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${text}`);
  return warmJobSchema.parse(JSON.parse(text));
};

let cancelling = false;
process.on('SIGINT', () => {
  if (cancelling) process.exit(130);
  cancelling = true;
  process.stderr.write('\nwarm: cancelling the job (Ctrl-C again to leave it running)\n');
  void fetch(`${origin}/api/v1/jobs/${id}`, { method: 'DELETE', headers: auth });
});

let job = await read();
if (interactive) bar.start(scale(job).total, 0, payload(job));
for (;;) {
  if (interactive) {
    const s = scale(job);
    bar.setTotal(s.total);
    bar.update(s.value, payload(job));
  }
  if (job.state !== 'running') break;
  await new Promise((r) => setTimeout(r, 200));
  try {
    job = await read();
  } catch (error) {
    if (interactive) bar.stop();
    fail(`lost the job: ${(error as Error).message}`, 1);
  }
}
if (interactive) bar.stop();
const seconds = (Date.parse(job.finished_at ?? job.updated_at) - Date.parse(job.created_at)) / 1000;
process.stdout.write(
  `${job.state}: ${job.done} loaded, ${job.failed} failed, ${(job.bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s (${Math.round(job.rate_per_second)} items/s)\n`,
);
if (job.error) process.stdout.write(`error: ${job.error}\n`);
for (const item of job.failed_items) {
  process.stdout.write(
    `failed ${item.key ?? '-'}${item.line === null ? '' : ` (line ${item.line})`}: ${item.reason}\n`,
  );
}
if (job.failed > job.failed_items.length) process.stdout.write(`… and ${job.failed - job.failed_items.length} more\n`);
process.exit(job.state === 'done' && job.failed === 0 ? 0 : 1);
