import { createHash } from 'node:crypto';
import type { WarmStartSource } from '../../shared/warm.ts';
import type { JobStore } from './job-store.ts';
import { specOf } from './routes.ts';
import type { WarmJobs } from './warm-jobs.ts';

/** What `/ready` shows of the start-up warming. */
export interface WarmOnStartStatus {
  /** `waiting` (another replica of the region holds the lease), `running` (here), `done`, or `failed` (logged). */
  readonly state: 'waiting' | 'running' | 'done' | 'failed';
  /** Jobs this replica ran. */
  readonly jobs: readonly string[];
  /** Seconds left before `/ready` stops waiting for it. */
  readonly deadline_seconds_left: number;
}

/** How long the done mark of a region's start-up warming is kept, ms: a restart within it does not warm again. */
export const warmDoneRetentionMs = 24 * 3600_000;

export interface WarmOnStartOptions {
  readonly sources: readonly WarmStartSource[];
  readonly jobs: WarmJobs;
  readonly store: JobStore;
  /** `STRATA_REGION`: the warming runs once per region. */
  readonly region: string;
  readonly replica: string;
  /** `WARM_ON_START_DEADLINE_SECONDS`. */
  readonly deadlineSeconds: number;
  /** Lease lifetime, ms: a dead holder is replaced within about this. */
  readonly leaseMs?: number;
  /** How often a waiting replica looks for the done mark, ms. */
  readonly pollMs?: number;
  readonly onError?: (error: unknown) => void;
  readonly now?: () => number;
}

/**
 * Start-up warming (`WARM_ON_START`), once per region: the replica that
 * takes the region's lease in the store (renewed while it runs) runs each
 * source as a warm job, one after another, then marks the warming done for
 * this configuration (a hash of it) and region; the other replicas wait for
 * the mark, and take the lease over when its holder dies. `/ready` answers
 * 503 until the mark is seen or `deadlineSeconds` pass.
 */
export class WarmOnStart {
  readonly #o: WarmOnStartOptions;
  readonly #now: () => number;
  readonly #startedMs: number;
  readonly #name: string;
  #state: WarmOnStartStatus['state'] = 'waiting';
  readonly #jobIds: string[] = [];
  #stopped = false;
  #wake: (() => void) | null = null;

  constructor(options: WarmOnStartOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#startedMs = this.#now();
    const fingerprint = createHash('sha256').update(JSON.stringify(options.sources)).digest('hex').slice(0, 16);
    this.#name = `warm-on-start:${options.region}:${fingerprint}`;
  }

  /** Ready for traffic: the warming is over (done or failed) or the deadline passed. */
  get ready(): boolean {
    return this.#state === 'done' || this.#state === 'failed' || this.#secondsLeft() === 0;
  }

  get status(): WarmOnStartStatus {
    return { state: this.#state, jobs: [...this.#jobIds], deadline_seconds_left: this.#secondsLeft() };
  }

  #secondsLeft(): number {
    return Math.max(0, Math.ceil(this.#o.deadlineSeconds - (this.#now() - this.#startedMs) / 1000));
  }

  /** Runs in the background until the warming is done here or elsewhere, or {@link stop}. */
  start(): Promise<void> {
    return this.#loop().catch((error: unknown) => {
      this.#state = 'failed';
      this.#o.onError?.(error);
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  async #loop(): Promise<void> {
    const leaseMs = this.#o.leaseMs ?? 5_000;
    while (!this.#stopped) {
      try {
        if (await this.#o.store.marked(this.#name)) {
          this.#state = 'done';
          return;
        }
        if (await this.#o.store.lease(this.#name, this.#o.replica, leaseMs)) {
          await this.#run(leaseMs);
          return;
        }
      } catch (error) {
        this.#o.onError?.(error);
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, this.#o.pollMs ?? 250).unref();
      });
    }
  }

  async #run(leaseMs: number): Promise<void> {
    this.#state = 'running';
    const renew = setInterval(() => {
      this.#o.store.lease(this.#name, this.#o.replica, leaseMs).catch((error) => this.#o.onError?.(error));
    }, leaseMs / 3);
    let failed = false;
    try {
      for (const source of this.#o.sources) {
        if (this.#stopped) return;
        try {
          const input = source.file ? { path: source.file } : { keys: source.keys ?? [] };
          const { id, done } = await this.#o.jobs.start(specOf(source), input);
          this.#jobIds.push(id);
          const job = await done;
          if (job.state !== 'done' || job.failed > 0) failed = true;
        } catch (error) {
          failed = true;
          this.#o.onError?.(error);
        }
      }
      await this.#o.store.mark(this.#name, warmDoneRetentionMs);
      this.#state = failed ? 'failed' : 'done';
    } finally {
      clearInterval(renew);
      await this.#o.store.release(this.#name, this.#o.replica).catch(() => {});
    }
  }
}
