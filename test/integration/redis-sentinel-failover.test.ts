import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { redisStore } from '../../origin/store/redis.ts';
import { redisDriverFromConfig } from '../../origin/store/resilient-from-config.ts';
import { startRedisSentinel } from '../../scripts/services/redis-sentinel.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';

/** Writers running at once, each writing its own sequence of keys. */
const WRITERS = 8;
/** Acknowledged writes before the master is killed. */
const WRITES_BEFORE_KILL = 2_000;
/** Acknowledged writes after the failover before the stream stops. */
const WRITES_AFTER_FAILOVER = 500;
/** Sentinels' `down-after-milliseconds` for this test. */
const DOWN_AFTER_MS = 3_000;
const namespace = 'failover';
/** Printed when a run saw a second failover, of a live master: its loss figures are not asserted. */
const SECOND_FAILOVER = 'the sentinels failed over a live master too; only the counts are reported';
/** Value size, bytes: large enough that replication has work to lag behind. */
const value = new Uint8Array(8 * 1024).fill(120);

interface LossReport {
  readonly waitReplicas: number;
  /** Writes the store acknowledged (resolved), in all. */
  readonly acknowledged: number;
  /** Acknowledged writes missing from the master the sentinels name at the end. */
  readonly lost: number;
  /** Writes that were rejected or timed out (never acknowledged). */
  readonly refused: number;
  /** Acknowledged writes lost among those acknowledged after the new master was found. */
  readonly lostAfterFailover: number;
  readonly failoverMs: number;
  /**
   * Whether the sentinels failed over again after the one the kill caused:
   * they judged the live new master down (it answered PING later than
   * `down-after-milliseconds`, as happens on a loaded machine) while the
   * stream ran. Seen under load; it makes the first new master a replica.
   */
  readonly failedOverAgain: boolean;
}

/**
 * Starts a fresh master + 2 replicas + 3 sentinels, streams writes through the
 * driver the config builds, SIGKILLs the master mid-stream, waits for the
 * sentinels to promote a replica, restarts the old master (it rejoins as a
 * replica) and waits for the stream to resume on the new master, then reads
 * back every acknowledged key from the master the sentinels name at the end
 * (not the first one promoted: the sentinels may fail over again meanwhile).
 */
async function measureLoss(waitReplicas: number): Promise<LossReport> {
  const sentinel = await startRedisSentinel({
    dir: join(inject('serversDir'), `sentinel-${process.pid}-failover-wait${waitReplicas}`),
    // At 1000 ms a loaded machine made the sentinels judge the just-promoted,
    // live master down and fail over again; 3000 ms makes that rare.
    downAfterMs: DOWN_AFTER_MS,
  });
  const driver = redisDriverFromConfig(
    parseConfig(originConfigSchema, {
      ...sentinel.env,
      REDIS_WAIT_REPLICAS: String(waitReplicas),
      REDIS_WAIT_TIMEOUT_MS: '250',
      REDIS_RECONNECT_MAX_MS: '200',
    }),
  )!;
  const acked: string[] = [];
  const ackedAfterFailover = new Set<string>();
  let refused = 0;
  const errors = new Map<string, number>();
  let failedOver = false;
  let stop = false;
  try {
    const oldMaster = await sentinel.masterPort();
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}-${i}`;
        try {
          await driver.store.set(namespace, key, { value, contentType: 'text/plain', ttlMs: 600_000, tags: [] });
          acked.push(key);
          if (failedOver) ackedAfterFailover.add(key);
        } catch (error) {
          refused++;
          errors.set(String(error), (errors.get(String(error)) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    const until = async (what: string, check: () => boolean, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify([...errors])}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await until('writes before the kill', () => acked.length >= WRITES_BEFORE_KILL, 30_000);
    const killedAt = Date.now();
    await sentinel.killNode(oldMaster);
    const newMaster = await sentinel.waitForFailover(oldMaster);
    failedOver = true;
    const failoverMs = Date.now() - killedAt;
    const epochAfterFailover = await sentinel.configEpoch();
    // The old master comes back empty, as a replica of the new one: restarted as
    // a bare master it would take writes from a client sent to it by a sentinel
    // that has not learned of the failover yet, until the resync wipes them.
    await sentinel.restartNode(oldMaster, newMaster);
    await until('writes on the new master', () => ackedAfterFailover.size >= WRITES_AFTER_FAILOVER, 60_000);
    stop = true;
    await Promise.all(writers);

    // Read back from the master a majority of sentinels names now, directly, in
    // chunks, apart from the client under test. It is `newMaster` unless the
    // sentinels failed over again; then `newMaster` may be a replica by now,
    // resynchronised from the next master. A failover during the read-back
    // (the node stops being master, or the epoch moves) makes it read again.
    const readBack = async (port: number): Promise<string[] | null> => {
      const reader = redisStore({ url: `redis://127.0.0.1:${port}` });
      try {
        if (((await reader.client.call('ROLE')) as unknown[])[0] !== 'master') return null;
        const lostKeys: string[] = [];
        for (let i = 0; i < acked.length; i += 250) {
          const chunk = acked.slice(i, i + 250);
          const found = await reader.getMany(namespace, chunk);
          lostKeys.push(...chunk.filter((k) => !found.has(k)));
        }
        return lostKeys;
      } finally {
        await reader.close();
      }
    };
    let failedOverAgain = false;
    let lostKeys: string[] | null = null;
    const readDeadline = Date.now() + 60_000;
    while (lostKeys === null) {
      if (Date.now() > readDeadline) throw new Error('timed out waiting for a stable master to read back from');
      const [finalMaster, epoch] = [await sentinel.masterPort(), await sentinel.configEpoch()];
      if (finalMaster !== newMaster || epoch !== epochAfterFailover) failedOverAgain = true;
      lostKeys = await readBack(finalMaster);
      if ((await sentinel.masterPort()) !== finalMaster || (await sentinel.configEpoch()) !== epoch) lostKeys = null;
      if (lostKeys === null) await new Promise((r) => setTimeout(r, 100));
    }
    return {
      waitReplicas,
      acknowledged: acked.length,
      lost: lostKeys.length,
      refused,
      lostAfterFailover: lostKeys.filter((k) => ackedAfterFailover.has(k)).length,
      failoverMs,
      failedOverAgain,
    };
  } finally {
    stop = true;
    await driver.store.close();
    await sentinel.stop();
  }
}

describe('Redis Sentinel failover under a write stream (SIGKILL of the master)', () => {
  const reports: LossReport[] = [];

  it('without WAIT: the origin follows the new master; acknowledged writes may be lost, and the loss is counted', async () => {
    const report = await measureLoss(0);
    reports.push(report);
    console.info('sentinel failover, REDIS_WAIT_REPLICAS=0:', JSON.stringify(report));
    expect(report.acknowledged).toBeGreaterThanOrEqual(WRITES_BEFORE_KILL + WRITES_AFTER_FAILOVER);
    expect(report.lost).toBeLessThanOrEqual(report.acknowledged);
    // Guaranteed only while the kill's failover is the only one: when Sentinel
    // fails over a live master, that master keeps answering writes until it is
    // demoted, and they are lost (split brain; see docs/redis-sentinel.md).
    if (!report.failedOverAgain) expect(report.lostAfterFailover).toBe(0);
    else console.warn(SECOND_FAILOVER);
  }, 180_000);

  it('with WAIT for 1 of 2 replicas: counted, not guaranteed (Sentinel may promote the replica that did not confirm)', async () => {
    const report = await measureLoss(1);
    reports.push(report);
    console.info('sentinel failover, REDIS_WAIT_REPLICAS=1:', JSON.stringify(report));
    expect(report.acknowledged).toBeGreaterThanOrEqual(WRITES_BEFORE_KILL + WRITES_AFTER_FAILOVER);
    // As without WAIT: after a second failover, a write that only the replica
    // Sentinel did not promote confirmed is lost with the demoted master.
    if (!report.failedOverAgain) expect(report.lostAfterFailover).toBe(0);
    else console.warn(SECOND_FAILOVER);
  }, 180_000);

  it('with WAIT for both replicas: no acknowledged write is lost when only the master dies', async () => {
    // Every acknowledged write was confirmed by both replicas before its answer,
    // so whichever replica Sentinel promotes holds it. This holds for this fault
    // (one SIGKILL, replicas alive). WAIT is not consensus and promises nothing
    // when a replica dies too, the network splits, or the sentinels fail over a
    // live master (seen under load at 1000 ms down-after: 6 of 2,552 lost).
    const report = await measureLoss(2);
    reports.push(report);
    console.info('sentinel failover, REDIS_WAIT_REPLICAS=2:', JSON.stringify(report));
    expect(report.acknowledged).toBeGreaterThanOrEqual(WRITES_BEFORE_KILL + WRITES_AFTER_FAILOVER);
    if (!report.failedOverAgain) expect(report.lost).toBe(0);
    else console.warn(SECOND_FAILOVER);
  }, 180_000);
});
