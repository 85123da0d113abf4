import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import type { CacheService } from '../../origin/cache-service.ts';
import { hottestKeys } from '../../origin/jobs/inputs.ts';
import { type JobRecord, type JobStore, memoryJobStore, newJobRecord } from '../../origin/jobs/job-store.ts';
import { checkTemplate } from '../../origin/jobs/url-source.ts';
import { jobView, WarmJobs } from '../../origin/jobs/warm-jobs.ts';
import { WarmOnStart } from '../../origin/jobs/warm-on-start.ts';
import { CacheError } from '../../shared/errors.ts';

const record = (over: Partial<JobRecord> = {}): JobRecord => ({
  ...newJobRecord({
    id: '0f8fad5b-d9cb-469f-a165-70867728950e',
    namespace: 'ns',
    format: 'keys',
    replica: 'r1',
    createdMs: 1_000_000,
    total: null,
    inputTotalBytes: null,
  }),
  ...over,
});

describe('warm job progress', () => {
  it('rates are since the start, and the ETA comes from items when their total is known, else from input bytes', () => {
    const items = jobView(record({ total: 1000, done: 150, failed: 50 }), [], 1_010_000);
    expect(items.rate_per_second).toBe(20);
    expect(items.eta_seconds).toBe(40);
    const bytes = jobView(record({ inputBytes: 250, inputTotalBytes: 1000, done: 10 }), [], 1_010_000);
    expect(bytes.eta_seconds).toBe(30);
    expect(jobView(record({ state: 'done', finishedMs: 1_004_000, done: 8 }), [], 2_000_000)).toMatchObject({
      eta_seconds: null,
      rate_per_second: 2,
      finished_at: new Date(1_004_000).toISOString(),
    });
    expect(jobView(record({ reads: 4, hits: 3 }), [], 1_001_000).hit_ratio).toBe(0.75);
    expect(jobView(record(), [], 1_001_000).hit_ratio).toBeNull();
  });

  it('a running job whose heartbeat is older than staleMs is reported and recorded failed; a fresh one is not', async () => {
    let now = 1_000_000;
    const store = memoryJobStore(() => now);
    const jobs = new WarmJobs({
      service: {} as CacheService,
      store,
      replica: 'r2',
      allowedOrigins: new Set(),
      maxValueBytes: 1024,
      staleMs: 5_000,
      now: () => now,
    });
    await store.create(record());
    now += 4_000;
    expect((await jobs.get(record().id))?.state).toBe('running');
    now += 2_000;
    const failed = await jobs.get(record().id);
    expect(failed).toMatchObject({ state: 'failed', error: expect.stringContaining('r1') });
    expect((await store.get(record().id))?.job.state).toBe('failed');
    // A finished job keeps its state, whatever its heartbeat.
    await store.create(record({ id: '1f8fad5b-d9cb-469f-a165-70867728950e', state: 'done', finishedMs: now }));
    now += 60_000;
    expect((await jobs.get('1f8fad5b-d9cb-469f-a165-70867728950e'))?.state).toBe('done');
  });
});

describe('URL templates and the allow-list', () => {
  const allowed = new Set(['https://data.example', 'http://127.0.0.1:9000']);
  const refused = (template: string) => {
    try {
      checkTemplate(template, allowed);
    } catch (error) {
      return error instanceof CacheError && error.code === 'CACHE_004';
    }
    return false;
  };

  it('accepts an allowed origin with {key} in the path or query, and refuses any other origin or shape', () => {
    expect(refused('https://data.example/items/{key}')).toBe(false);
    expect(refused('https://data.example/items?id={key}')).toBe(false);
    expect(refused('http://127.0.0.1:9000/{key}')).toBe(false);
    expect(refused('http://data.example/items/{key}')).toBe(true);
    expect(refused('https://data.example:8443/items/{key}')).toBe(true);
    expect(refused('https://data.example.evil/items/{key}')).toBe(true);
    expect(refused('https://user@data.example.evil/{key}')).toBe(true);
    expect(refused('http://127.0.0.1:9001/{key}')).toBe(true);
    expect(refused('https://{key}.data.example/x')).toBe(true);
    expect(refused('file:///etc/{key}')).toBe(true);
    expect(refused('not a url {key}')).toBe(true);
  });
});

describe('hottest keys of a trace', () => {
  it('counts every request of a key, most requested first, ties in first-seen order, header skipped', async () => {
    const trace = ['version,time,op,size,lbn', '1,0,28,1,b', '1,0,28,1,a', '1,0,2a,1,a', '1,0,28,1,c', ''].join('\n');
    expect(await hottestKeys(Readable.from([trace]), 10)).toEqual(['a', 'b', 'c']);
    expect(await hottestKeys(Readable.from([trace]), 1)).toEqual(['a']);
    await expect(hottestKeys(Readable.from(['version\n1,2,3\n']), 5)).rejects.toThrow(/line 2/);
  });
});

describe('start-up warming, once per region', () => {
  const sources = [{ namespace: 'ns', format: 'keys' as const, keys: ['a'], url_template: 'https://d.example/{key}' }];

  it('a waiting replica takes the lease over when its holder stops renewing it, runs the warming and marks it done', async () => {
    let now = 1_000_000;
    const store = memoryJobStore(() => now);
    let holderDead = false;
    // The holder's view of the store: after its death no call of it reaches the store.
    const holderStore: JobStore = {
      ...store,
      lease: (name, owner, ttlMs) => (holderDead ? Promise.reject(new Error('dead')) : store.lease(name, owner, ttlMs)),
      release: (name, owner) => (holderDead ? Promise.reject(new Error('dead')) : store.release(name, owner)),
    };
    const ran: string[] = [];
    let endHeldJob = () => {};
    const jobsOf = (replica: string, finishes: boolean) =>
      ({
        start: async () => {
          ran.push(replica);
          const job = newJobRecord({
            id: `${replica}-job`,
            namespace: 'ns',
            format: 'keys',
            replica,
            createdMs: now,
            total: 1,
            inputTotalBytes: null,
          });
          return {
            id: job.id,
            done: finishes
              ? Promise.resolve({ ...job, state: 'done' as const, done: 1 })
              : new Promise<JobRecord>((resolve) => {
                  endHeldJob = () => resolve({ ...job, state: 'failed' });
                }),
          };
        },
      }) as unknown as WarmJobs;
    const common = { sources, region: 'eu', deadlineSeconds: 3600, leaseMs: 1_000, pollMs: 5, now: () => now };
    const holder = new WarmOnStart({ ...common, jobs: jobsOf('A', false), store: holderStore, replica: 'A' });
    const waiter = new WarmOnStart({ ...common, jobs: jobsOf('B', true), store, replica: 'B' });
    void holder.start();
    await vi.waitFor(() => expect(holder.status.state).toBe('running'));
    void waiter.start();
    await new Promise((r) => setTimeout(r, 50));
    expect(waiter.status.state).toBe('waiting');
    expect(waiter.ready).toBe(false);
    holderDead = true;
    now += 1_001;
    await vi.waitFor(() => expect(waiter.status.state).toBe('done'));
    expect(ran).toEqual(['A', 'B']);
    expect(waiter.ready).toBe(true);
    // A third replica finds the mark and runs nothing.
    const late = new WarmOnStart({ ...common, jobs: jobsOf('C', true), store, replica: 'C' });
    await late.start();
    expect(late.status.state).toBe('done');
    expect(ran).toEqual(['A', 'B']);
    holder.stop();
    waiter.stop();
    // The dead holder's job ends (its process would be gone); its renewal timer stops with it.
    endHeldJob();
  });

  it('/ready stops waiting at the deadline even while the warming runs', () => {
    let now = 0;
    const onStart = new WarmOnStart({
      sources,
      jobs: {} as WarmJobs,
      store: memoryJobStore(() => now),
      region: 'eu',
      replica: 'A',
      deadlineSeconds: 10,
      now: () => now,
    });
    expect(onStart.ready).toBe(false);
    now = 9_999;
    expect(onStart.status.deadline_seconds_left).toBe(1);
    now = 10_000;
    expect(onStart.ready).toBe(true);
  });
});
