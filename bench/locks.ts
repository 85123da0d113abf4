import { Redis } from 'ioredis';
import { redisLockStore } from '../origin/locks/redis.ts';
import { type BenchRow, fmt } from './load.ts';
import { percentile } from './trace.ts';

/** One contention run: cycles completed, attempts made, seconds, and each call's latency (ms). */
interface ContentionRun {
  readonly cycles: number;
  readonly attempts: number;
  readonly seconds: number;
  readonly acquireMs: number[];
  readonly cycleMs: number[];
}

/**
 * Runs `contenders` loops for `durationMs` over `locks` lock names: each loop
 * picks a lock, tries to acquire it, and when granted releases it at once.
 * A cycle is one granted acquire plus its release.
 */
async function contend(
  options: { contenders: number; locks: number; durationMs: number },
  tryAcquire: (name: string) => Promise<(() => Promise<void>) | null>,
): Promise<ContentionRun> {
  const acquireMs: number[] = [];
  const cycleMs: number[] = [];
  let cycles = 0;
  let attempts = 0;
  const started = performance.now();
  const until = started + options.durationMs;
  const loop = async (i: number) => {
    for (let n = i; performance.now() < until; n++) {
      const name = `bench-lock-${n % options.locks}`;
      const t0 = performance.now();
      const release = await tryAcquire(name);
      const t1 = performance.now();
      attempts += 1;
      acquireMs.push(t1 - t0);
      if (!release) continue;
      await release();
      cycles += 1;
      cycleMs.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: options.contenders }, (_, i) => loop(i)));
  return { cycles, attempts, seconds: (performance.now() - started) / 1000, acquireMs, cycleMs };
}

/** Pools runs of one subject: rates over their total time, percentiles over all their samples. */
function pooled(runs: readonly ContentionRun[]) {
  const seconds = runs.reduce((n, r) => n + r.seconds, 0);
  return {
    cyclesPerSecond: runs.reduce((n, r) => n + r.cycles, 0) / seconds,
    attemptsPerSecond: runs.reduce((n, r) => n + r.attempts, 0) / seconds,
    acquireMs: runs.flatMap((r) => r.acquireMs),
    cycleMs: runs.flatMap((r) => r.cycleMs),
  };
}

function describe(p: ReturnType<typeof pooled>): string {
  return (
    `${fmt(p.cyclesPerSecond, 0)} acquire+release/s (${fmt(p.attemptsPerSecond, 0)} attempts/s), ` +
    `acquire p50 ${fmt(percentile(p.acquireMs, 50), 2)} ms, p99 ${fmt(percentile(p.acquireMs, 99), 2)} ms; ` +
    `cycle p99 ${fmt(percentile(p.cycleMs, 99), 2)} ms`
  );
}

/**
 * **(v)** Locks under contention on Redis standalone: Strata's lock store
 * (one Lua script per acquire and per release, fencing token from `TIME`)
 * against, in the same run, the bare pattern it replaces: `SET key token NX
 * PX ttl` and `DEL` with ioredis, no token history and no fencing. 32
 * contenders over 4 lock names (8 per lock). Each subject runs twice, in
 * the order bare, Strata, Strata, bare, so that drift in the shared machine's
 * speed weighs on both alike; rates and percentiles pool both runs.
 * Reported; no target.
 */
export async function lockBenchmarks(options: { redisUrl: string; durationSeconds: number }): Promise<BenchRow[]> {
  const shape = { contenders: 32, locks: 4, durationMs: options.durationSeconds * 1000 };
  const client = new Redis(options.redisUrl, { enableAutoPipelining: true });
  try {
    const store = redisLockStore(client);
    const bareAttempt = async (name: string) => {
      const ok = await client.set(`bare:${name}`, '1', 'PX', 30_000, 'NX');
      return ok === 'OK'
        ? async () => {
            await client.del(`bare:${name}`);
          }
        : null;
    };
    const strataAttempt = async (name: string) => {
      const outcome = await store.acquire('bench', name, 30_000);
      if (!outcome.acquired) return null;
      const { token } = outcome.grant;
      return async () => {
        await store.release('bench', name, token);
      };
    };
    const perRun = { ...shape, durationMs: shape.durationMs / 2 };
    const bareRuns = [await contend(perRun, bareAttempt)];
    const strataRuns = [await contend(perRun, strataAttempt), await contend(perRun, strataAttempt)];
    bareRuns.push(await contend(perRun, bareAttempt));
    const bare = pooled(bareRuns);
    const strata = pooled(strataRuns);
    return [
      {
        benchmark: '(v) locks: acquire/release, 32 contenders on 4 locks, Redis',
        subject: `LockStore (Lua, fencing token): ${describe(strata)}`,
        baseline: `bare SET NX PX + DEL (ioredis): ${describe(bare)}`,
        result: `${fmt((strata.cyclesPerSecond / bare.cyclesPerSecond) * 100, 1)}% of bare cycles/s`,
        target: 'reported (no target set)',
        met: 'n/a',
      },
    ];
  } finally {
    client.disconnect();
  }
}
