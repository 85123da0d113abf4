import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { WarmJob } from '../../shared/warm.ts';
import type { CacheService } from '../cache-service.ts';
import { type JobRecord, type JobStore, newJobRecord } from './job-store.ts';
import { checkTemplate, type UrlFetchOptions } from './url-source.ts';
import { type RunProgress, runWarm, type WarmInput, type WarmSpec } from './warm-runner.ts';

/** What the warm jobs report to metrics. */
export interface WarmEvents {
  /** Jobs running on this replica changed by `delta`. */
  onRunning?(delta: number): void;
  /** Items loaded or failed since the last call. */
  onItems?(result: 'loaded' | 'failed', n: number): void;
  /** Hit ratio of the namespace's reads on this replica since the job started (null when none was read). */
  onHitRatio?(namespace: string, ratio: number | null): void;
  /** A job ended (for the log). */
  onFinished?(job: JobRecord): void;
}

export interface WarmJobsOptions {
  readonly service: CacheService;
  readonly store: JobStore;
  /** This replica's name, shown in each job it runs. */
  readonly replica: string;
  /** `WARM_ALLOWED_ORIGINS`, exact origins. */
  readonly allowedOrigins: ReadonlySet<string>;
  readonly maxValueBytes: number;
  /** Heartbeat and progress write interval, ms. */
  readonly heartbeatMs?: number;
  /** A running job whose heartbeat is older than this, ms, is reported failed. */
  readonly staleMs?: number;
  /** First retry back-off of a fetch, ms (it doubles per retry). */
  readonly retryDelayMs?: number;
  /** Per-attempt fetch timeout, ms. */
  readonly fetchTimeoutMs?: number;
  readonly events?: WarmEvents;
  /** Clock, Unix ms. */
  readonly now?: () => number;
}

/**
 * Starts, reports and cancels warm jobs (docs/warming.md). A job runs on the
 * replica that started it and writes its progress and a heartbeat to the
 * {@link JobStore} every `heartbeatMs`, so any replica answers for it; a
 * running job whose heartbeat is older than `staleMs` (its replica died) is
 * reported, and recorded, as failed. A cancel from any replica is seen at
 * the next heartbeat (at once on the running replica).
 */
export class WarmJobs {
  readonly #o: WarmJobsOptions;
  readonly #running = new Map<string, AbortController>();
  readonly #ending = new Set<Promise<JobRecord>>();
  #shuttingDown = false;
  readonly #now: () => number;

  constructor(options: WarmJobsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Jobs running on this replica. */
  get runningHere(): number {
    return this.#running.size;
  }

  /**
   * Validates `spec`, records the job and runs it in the background.
   * `cleanup` runs when it ends. Answers the new job id.
   * @throws CacheError CACHE_004 for a URL template that is malformed or not on the allow-list (before any request).
   */
  async start(
    spec: WarmSpec,
    input: WarmInput,
    cleanup?: () => Promise<void>,
  ): Promise<{ id: string; done: Promise<JobRecord> }> {
    if (spec.urlTemplate !== undefined) checkTemplate(spec.urlTemplate, this.#o.allowedOrigins);
    const job = newJobRecord({
      id: randomUUID(),
      namespace: spec.namespace,
      format: spec.format,
      replica: this.#o.replica,
      createdMs: this.#now(),
      total: 'keys' in input ? input.keys.length : null,
      inputTotalBytes: 'path' in input ? (await stat(input.path)).size : null,
    });
    await this.#o.store.create(job);
    const done = this.#run(job, spec, input).finally(() => cleanup?.());
    this.#ending.add(done);
    void done.finally(() => this.#ending.delete(done));
    return { id: job.id, done };
  }

  async #run(job: JobRecord, spec: WarmSpec, input: WarmInput): Promise<JobRecord> {
    const controller = new AbortController();
    this.#running.set(job.id, controller);
    const events = this.#o.events;
    events?.onRunning?.(1);
    const reads0 = this.#reads(spec.namespace);
    const progress: RunProgress = {
      total: job.total,
      done: 0,
      failed: 0,
      bytes: 0,
      pending: [],
      inputBytes: () => 0,
    };
    let reported = { done: 0, failed: 0 };
    const beat = async () => {
      const now = this.#now();
      const reads = this.#reads(spec.namespace);
      Object.assign(job, {
        updatedMs: now,
        heartbeatMs: now,
        total: progress.total,
        done: progress.done,
        failed: progress.failed,
        bytes: progress.bytes,
        inputBytes: progress.inputBytes(),
        reads: reads.reads - reads0.reads,
        hits: reads.hits - reads0.hits,
      });
      events?.onItems?.('loaded', progress.done - reported.done);
      events?.onItems?.('failed', progress.failed - reported.failed);
      events?.onHitRatio?.(spec.namespace, job.reads > 0 ? job.hits / job.reads : null);
      reported = { done: progress.done, failed: progress.failed };
      const failures = progress.pending.splice(0);
      await this.#o.store.addFailures(job.id, failures);
      const { id, namespace, format, state, createdMs, finishedMs, error, replica, cancel, ...fields } = job;
      if (await this.#o.store.progress(job.id, fields)) controller.abort();
    };
    let beating = Promise.resolve();
    const timer = setInterval(() => {
      // One heartbeat at a time: a slow store must not pile them up.
      beating = beating.then(beat).catch(() => {});
    }, this.#o.heartbeatMs ?? 1_000);
    let state: 'done' | 'failed' | 'cancelled' = 'done';
    let error: string | null = null;
    try {
      await runWarm(
        spec,
        input,
        { service: this.#o.service, fetch: this.#fetchOptions() },
        progress,
        controller.signal,
      );
      if (controller.signal.aborted) state = 'cancelled';
    } catch (e) {
      state = controller.signal.aborted ? 'cancelled' : 'failed';
      error = state === 'failed' ? (e instanceof Error ? e.message : String(e)) : null;
    } finally {
      // Stopped by a shutdown, not by a caller: the job did not finish.
      if (this.#shuttingDown && controller.signal.aborted) {
        state = 'failed';
        error = `the replica running it (${this.#o.replica}) shut down`;
      }
      clearInterval(timer);
      this.#running.delete(job.id);
      events?.onRunning?.(-1);
    }
    await beating;
    await beat().catch(() => {});
    const end = this.#now();
    // A store that cannot take the end now leaves the job to be reported failed by its stale heartbeat.
    await this.#o.store.finish(job.id, state, error, end).catch(() => {});
    Object.assign(job, { state, error, finishedMs: end });
    events?.onFinished?.(job);
    return job;
  }

  #fetchOptions(): UrlFetchOptions {
    return {
      allowedOrigins: this.#o.allowedOrigins,
      retries: 3,
      initialDelayMs: this.#o.retryDelayMs ?? 100,
      maxDelayMs: 5_000,
      maxValueBytes: this.#o.maxValueBytes,
      timeoutMs: this.#o.fetchTimeoutMs ?? 10_000,
    };
  }

  #reads(namespace: string): { reads: number; hits: number } {
    const c = this.#o.service.counters.counts(namespace);
    const hits = Object.values(c.hits).reduce((a, b) => a + b, 0);
    return { hits, reads: hits + c.misses };
  }

  /**
   * A job's progress, from the store; a running job whose heartbeat is stale
   * is recorded and answered as failed. Null when there is no such job.
   */
  async get(id: string): Promise<WarmJob | null> {
    const found = await this.#o.store.get(id);
    if (!found) return null;
    const { job } = found;
    const now = this.#now();
    const staleMs = this.#o.staleMs ?? 5_000;
    if (job.state === 'running' && !this.#running.has(id) && now - job.heartbeatMs > staleMs) {
      const error = `the replica running it (${job.replica}) stopped: no heartbeat for ${Math.round((now - job.heartbeatMs) / 1000)} s`;
      await this.#o.store.finish(id, 'failed', error, now);
      const after = await this.#o.store.get(id);
      if (after) return jobView(after.job, after.failures, now);
    }
    return jobView(job, found.failures, now);
  }

  /** Asks a job to stop (at once here, at its next heartbeat elsewhere); null when there is no such job. */
  async cancel(id: string): Promise<WarmJob | null> {
    if (!(await this.#o.store.cancel(id))) return null;
    this.#running.get(id)?.abort();
    return await this.get(id);
  }

  /** The most recent jobs (newest first), as {@link get} reports them. */
  async recent(limit = 20): Promise<WarmJob[]> {
    const jobs = await this.#o.store.recent(limit);
    const views = await Promise.all(jobs.map((j) => this.get(j.id)));
    return views.filter((v): v is WarmJob => v !== null);
  }

  /** Origin shutdown: aborts the jobs running here and waits until each has recorded its end (`failed`, "shut down"). */
  async stopAll(): Promise<void> {
    this.#shuttingDown = true;
    for (const controller of this.#running.values()) controller.abort();
    await Promise.allSettled([...this.#ending]);
  }
}

/** The wire view of a job: ISO times, rates since the start, ETA. */
export function jobView(job: JobRecord, failures: WarmJob['failed_items'], nowMs: number): WarmJob {
  const end = job.finishedMs ?? (job.state === 'running' ? nowMs : job.updatedMs);
  const seconds = Math.max((end - job.createdMs) / 1000, 0.001);
  const items = job.done + job.failed;
  const rate = items / seconds;
  let eta: number | null = null;
  if (job.state === 'running') {
    if (job.total !== null && rate > 0) eta = Math.max(job.total - items, 0) / rate;
    else if (job.inputTotalBytes !== null && job.inputBytes > 0)
      eta = (Math.max(job.inputTotalBytes - job.inputBytes, 0) * seconds) / job.inputBytes;
  }
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    id: job.id,
    namespace: job.namespace,
    format: job.format,
    state: job.state,
    created_at: iso(job.createdMs),
    updated_at: iso(job.updatedMs),
    finished_at: job.finishedMs === null ? null : iso(job.finishedMs),
    total: job.total,
    done: job.done,
    failed: job.failed,
    bytes: job.bytes,
    input_bytes: job.inputBytes,
    input_total_bytes: job.inputTotalBytes,
    rate_per_second: rate,
    bytes_per_second: job.bytes / seconds,
    eta_seconds: eta,
    hit_ratio: job.reads > 0 ? job.hits / job.reads : null,
    failed_items: failures,
    error: job.error,
    replica: job.replica,
  };
}
