import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { warmJobSchema, warmStartedSchema } from '../shared/warm.ts';
import { type BenchRow, fmt } from './load.ts';
import { startProcess } from './procs.ts';

/** Entries of the warm file. */
const entries = 100_000;
const ttlSeconds = 3600;

const characterValue = (i: number) =>
  JSON.stringify({ id: i, name: `character-${i}`, level: i % 99, guild: `g${i % 500}` });

/** Seconds from the start of the upload until the job reads `done` (polled every 20 ms). */
async function warmSeconds(originUrl: string, file: string, namespace: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${originUrl}/api/v1/jobs/warm?namespace=${namespace}&format=jsonl`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(statSync(file).size) },
    body: Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>,
    duplex: 'half',
  } as RequestInit);
  if (res.status !== 202) throw new Error(`warm job refused: HTTP ${res.status} ${await res.text()}`);
  const { id } = warmStartedSchema.parse(await res.json());
  for (;;) {
    const job = warmJobSchema.parse(await (await fetch(`${originUrl}/api/v1/jobs/${id}`)).json());
    if (job.state !== 'running') {
      if (job.state !== 'done' || job.done !== entries)
        throw new Error(`warm job ended ${job.state}, ${job.done} done`);
      return (performance.now() - t0) / 1000;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Seconds to SET the same entries with EX straight into Redis, pipelined 1,000 at a time (ioredis). */
async function bareSetSeconds(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    const t0 = performance.now();
    for (let start = 0; start < entries; start += 1000) {
      const pipeline = redis.pipeline();
      for (let i = start; i < Math.min(start + 1000, entries); i++) {
        pipeline.set(`bench-bare:character:${i}`, characterValue(i), 'EX', ttlSeconds);
      }
      await pipeline.exec();
    }
    return (performance.now() - t0) / 1000;
  } finally {
    redis.disconnect();
  }
}

/**
 * (u) Warming throughput from a file: 100,000 JSON Lines entries (~80-byte
 * values, TTL and no tags) uploaded with `POST /api/v1/jobs/warm` to an
 * origin process on the memory store and on Redis, timed from the start of
 * the upload until the job reads `done`; beside a bare pipelined ioredis
 * `SET … EX` load of the same entries into the same Redis in the same run
 * (no purge intent, purge log, entry envelope or index: what a warm job
 * costs on top of the raw writes).
 */
export async function warmBenchmarks(options: { redisUrl: string }): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-warm-'));
  const file = join(dir, 'entries.jsonl');
  let valueBytes = 0;
  const lines: string[] = [];
  for (let i = 0; i < entries; i++) {
    const value = characterValue(i);
    valueBytes += Buffer.byteLength(value);
    lines.push(JSON.stringify({ key: `character:${i}`, value, ttl: ttlSeconds }));
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
  const fileBytes = statSync(file).size;
  const memory = await startProcess('origin/main.ts', 'ORIGIN_PORT', {});
  const redis = await startProcess('origin/main.ts', 'ORIGIN_PORT', { REDIS_URL: options.redisUrl });
  try {
    const onMemory = await warmSeconds(memory.url, file, 'benchwarm');
    const onRedis = await warmSeconds(redis.url, file, 'benchwarm');
    const bare = await bareSetSeconds(options.redisUrl);
    const rate = (s: number) =>
      `${fmt(entries / s)} entries/s, ${fmt(fileBytes / s / 1e6, 1)} MB/s of file (${fmt(valueBytes / s / 1e6, 1)} MB/s of values)`;
    const row = (store: string, seconds: number): BenchRow => ({
      benchmark: `(u) warming from a file, ${store} store (${entries.toLocaleString('en')} entries, ${fmt(fileBytes / 1e6, 1)} MB JSONL)`,
      subject: rate(seconds),
      baseline: `bare pipelined ioredis SET EX of the same entries, same Redis: ${rate(bare)}`,
      result: `${fmt(seconds, 2)} s vs ${fmt(bare, 2)} s (${fmt(bare / seconds, 2)}× the bare load's rate)`,
      target: 'none',
      met: 'n/a',
    });
    return [row('memory', onMemory), row('Redis', onRedis)];
  } finally {
    await Promise.all([memory.stop(), redis.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}
