import type { Cluster, Redis } from 'ioredis';
import type { FailedItem, WarmFormat, WarmJobState } from '../../shared/warm.ts';
import { maxListedFailures } from '../../shared/warm.ts';

/** A job as kept in the store; times are Unix ms. */
export interface JobRecord {
  readonly id: string;
  readonly namespace: string;
  readonly format: WarmFormat;
  state: WarmJobState;
  readonly createdMs: number;
  updatedMs: number;
  /** Last sign of life of the replica running it. */
  heartbeatMs: number;
  finishedMs: number | null;
  total: number | null;
  done: number;
  failed: number;
  /** Value bytes loaded. */
  bytes: number;
  inputBytes: number;
  inputTotalBytes: number | null;
  /** Reads and hits in the namespace on the running replica since the start (hit ratio while warming). */
  reads: number;
  hits: number;
  error: string | null;
  readonly replica: string;
  /** A cancel was asked (by any replica). */
  cancel: boolean;
}

/** A job just started: running, nothing loaded yet. */
export function newJobRecord(
  fields: Pick<JobRecord, 'id' | 'namespace' | 'format' | 'replica' | 'createdMs' | 'total' | 'inputTotalBytes'>,
): JobRecord {
  return {
    ...fields,
    state: 'running',
    updatedMs: fields.createdMs,
    heartbeatMs: fields.createdMs,
    finishedMs: null,
    done: 0,
    failed: 0,
    bytes: 0,
    inputBytes: 0,
    reads: 0,
    hits: 0,
    error: null,
    cancel: false,
  };
}

/** The progress fields a running job writes with each heartbeat. */
export type JobProgress = Pick<
  JobRecord,
  | 'updatedMs'
  | 'heartbeatMs'
  | 'total'
  | 'done'
  | 'failed'
  | 'bytes'
  | 'inputBytes'
  | 'inputTotalBytes'
  | 'reads'
  | 'hits'
>;

/**
 * Where jobs live, so any replica answers for any job: a Redis hash per job
 * on a Redis store, a map in the embedded memory store's process. Finished
 * jobs are kept {@link finishedJobRetentionMs}. Also the lease that lets one
 * replica of a region run the start-up warming.
 */
export interface JobStore {
  create(job: JobRecord): Promise<void>;
  /** Writes progress and heartbeat; answers whether a cancel was asked. */
  progress(id: string, progress: JobProgress): Promise<boolean>;
  /** Appends failed items, keeping the first {@link maxListedFailures}. */
  addFailures(id: string, items: readonly FailedItem[]): Promise<void>;
  /** Ends a job that is still running (a finished one keeps its state). */
  finish(id: string, state: Exclude<WarmJobState, 'running'>, error: string | null, atMs: number): Promise<void>;
  get(id: string): Promise<{ job: JobRecord; failures: FailedItem[] } | null>;
  /** Asks the job to stop; false when there is no such job. */
  cancel(id: string): Promise<boolean>;
  /** The most recent jobs, newest first (at most `limit`). */
  recent(limit: number): Promise<JobRecord[]>;
  /** Takes `name` for `ttlMs` when free or already ours (SET NX PX); answers whether we hold it. */
  lease(name: string, owner: string, ttlMs: number): Promise<boolean>;
  release(name: string, owner: string): Promise<void>;
  /** A durable flag (start-up warming done), kept `ttlMs`. */
  mark(name: string, ttlMs: number): Promise<void>;
  marked(name: string): Promise<boolean>;
}

/** Milliseconds a finished job stays readable. */
export const finishedJobRetentionMs = 24 * 3600_000;

/** Jobs in this process: for the embedded memory store, whose one replica is the only reader. */
export function memoryJobStore(now: () => number = Date.now): JobStore {
  const jobs = new Map<string, { job: JobRecord; failures: FailedItem[] }>();
  const leases = new Map<string, { owner: string; untilMs: number }>();
  const marks = new Map<string, number>();
  const prune = () => {
    const cutoff = now() - finishedJobRetentionMs;
    for (const [id, e] of jobs) if (e.job.finishedMs !== null && e.job.finishedMs < cutoff) jobs.delete(id);
  };
  return {
    async create(job) {
      prune();
      jobs.set(job.id, { job: { ...job }, failures: [] });
    },
    async progress(id, progress) {
      const entry = jobs.get(id);
      if (!entry) return false;
      Object.assign(entry.job, progress);
      return entry.job.cancel;
    },
    async addFailures(id, items) {
      const entry = jobs.get(id);
      if (entry) entry.failures.push(...items.slice(0, maxListedFailures - entry.failures.length));
    },
    async finish(id, state, error, atMs) {
      const entry = jobs.get(id);
      if (entry?.job.state !== 'running') return;
      Object.assign(entry.job, { state, error, finishedMs: atMs, updatedMs: atMs });
    },
    async get(id) {
      const entry = jobs.get(id);
      return entry ? { job: { ...entry.job }, failures: [...entry.failures] } : null;
    },
    async cancel(id) {
      const entry = jobs.get(id);
      if (entry) entry.job.cancel = true;
      return entry !== undefined;
    },
    async recent(limit) {
      prune();
      return [...jobs.values()]
        .map((e) => ({ ...e.job }))
        .sort((a, b) => b.createdMs - a.createdMs)
        .slice(0, limit);
    },
    async lease(name, owner, ttlMs) {
      const held = leases.get(name);
      if (held && held.owner !== owner && held.untilMs > now()) return false;
      leases.set(name, { owner, untilMs: now() + ttlMs });
      return true;
    },
    async release(name, owner) {
      if (leases.get(name)?.owner === owner) leases.delete(name);
    },
    async mark(name, ttlMs) {
      marks.set(name, now() + ttlMs);
    },
    async marked(name) {
      return (marks.get(name) ?? 0) > now();
    },
  };
}

// One hash tag per job, so a job's hash and its failure list share a Cluster slot.
const jobKey = (id: string) => `strata:job:{${id}}`;
const failuresKey = (id: string) => `strata:job:{${id}}:failed`;
const indexKey = 'strata:jobs';
const leaseKey = (name: string) => `strata:lease:${name}`;
const markKey = (name: string) => `strata:mark:${name}`;

const numberFields = [
  'createdMs',
  'updatedMs',
  'heartbeatMs',
  'done',
  'failed',
  'bytes',
  'inputBytes',
  'reads',
  'hits',
] as const;
const nullableNumberFields = ['finishedMs', 'total', 'inputTotalBytes'] as const;

function toHash(fields: Partial<JobRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[name] = value === null ? '' : typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
  }
  return out;
}

function fromHash(h: Record<string, string>): JobRecord | null {
  if (!h.id) return null;
  const record: Record<string, unknown> = {
    id: h.id,
    namespace: h.namespace,
    format: h.format,
    state: h.state,
    error: h.error ? h.error : null,
    replica: h.replica ?? '',
    cancel: h.cancel === '1',
  };
  for (const name of numberFields) record[name] = Number(h[name] ?? 0);
  for (const name of nullableNumberFields) record[name] = h[name] ? Number(h[name]) : null;
  return record as unknown as JobRecord;
}

// Ends a running job only: a replica reporting a dead runner must not overwrite a job that finished meanwhile.
const finishScript = `if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'error', ARGV[2], 'finishedMs', ARGV[3], 'updatedMs', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`;

/**
 * Jobs in Redis (standalone or Cluster): one hash per job
 * (`strata:job:{id}`), its failed items in a list beside it, and a sorted
 * set of job ids by creation time (`strata:jobs`). Single-key commands and
 * one-slot scripts only, so it runs on Cluster as is.
 */
export function redisJobStore(client: Redis | Cluster, now: () => number = Date.now): JobStore {
  return {
    async create(job) {
      await client.hset(jobKey(job.id), toHash(job));
      await client.zadd(indexKey, job.createdMs, job.id);
      await client.zremrangebyscore(indexKey, 0, now() - finishedJobRetentionMs);
    },
    async progress(id, progress) {
      const [, cancel] = await Promise.all([
        client.hset(jobKey(id), toHash(progress)),
        client.hget(jobKey(id), 'cancel'),
      ]);
      return cancel === '1';
    },
    async addFailures(id, items) {
      if (items.length === 0) return;
      const length = await client.rpush(failuresKey(id), ...items.map((i) => JSON.stringify(i)));
      if (length > maxListedFailures) await client.ltrim(failuresKey(id), 0, maxListedFailures - 1);
    },
    async finish(id, state, error, atMs) {
      await client.eval(
        finishScript,
        2,
        jobKey(id),
        failuresKey(id),
        state,
        error ?? '',
        String(atMs),
        String(finishedJobRetentionMs),
      );
    },
    async get(id) {
      const [hash, raw] = await Promise.all([
        client.hgetall(jobKey(id)),
        client.lrange(failuresKey(id), 0, maxListedFailures - 1),
      ]);
      const job = fromHash(hash);
      return job ? { job, failures: raw.map((r) => JSON.parse(r) as FailedItem) } : null;
    },
    async cancel(id) {
      if (!(await client.exists(jobKey(id)))) return false;
      await client.hset(jobKey(id), 'cancel', '1');
      return true;
    },
    async recent(limit) {
      const ids = await client.zrevrange(indexKey, 0, limit - 1);
      const hashes = await Promise.all(ids.map((id) => client.hgetall(jobKey(id))));
      return hashes.map(fromHash).filter((j): j is JobRecord => j !== null);
    },
    async lease(name, owner, ttlMs) {
      if ((await client.set(leaseKey(name), owner, 'PX', ttlMs, 'NX')) === 'OK') return true;
      // Ours already: renew (a small race with expiry is harmless: the other taker runs the same idempotent warming).
      if ((await client.get(leaseKey(name))) !== owner) return false;
      await client.pexpire(leaseKey(name), ttlMs);
      return true;
    },
    async release(name, owner) {
      if ((await client.get(leaseKey(name))) === owner) await client.del(leaseKey(name));
    },
    async mark(name, ttlMs) {
      await client.set(markKey(name), '1', 'PX', ttlMs);
    },
    async marked(name) {
      return (await client.exists(markKey(name))) === 1;
    },
  };
}
