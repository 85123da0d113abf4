/**
 * The purge log group reader with several batches in delivery at once, on the
 * real test Redis: the next batch is handed over while earlier ones are held,
 * acknowledgement in the log stays in log order (the stored progress is a
 * contiguous prefix), a failure re-delivers from the oldest unacknowledged
 * batch, and a takeover after out-of-order completions sees no false loss.
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { type LogGroupBatch, PurgeLogGroupReader } from '../../origin/purge/log-group-reader.ts';
import { RedisStreamPurgeBus } from '../../origin/purge/redis-stream-bus.ts';
import { ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const client = new Redis(inject('redisUrl'), { lazyConnect: true });
const quiet = pino({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => client.disconnect());

/** One call of `deliver`, held until the test settles it. */
interface Held {
  readonly batch: LogGroupBatch;
  readonly seqs: number[];
  resolve(): void;
  reject(error: Error): void;
}

/** A reader over its own log whose deliveries the test holds and settles, one entry per batch. */
async function setup(replicaId: string, logKey = ownPurgeLogKey(), leaseMs = 3_000) {
  const bus = await RedisStreamPurgeBus.open({ client, retainedEntries: 10_000, retentionSeconds: 3600, key: logKey });
  const calls: Held[] = [];
  const reader = new PurgeLogGroupReader({
    client,
    logKey,
    group: 'pipeline-test',
    name: 'pipeline',
    replicaId,
    leaseMs,
    blockMs: 200,
    batchSize: 1,
    maxInFlight: 3,
    deliver: (batch) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ batch, seqs: batch.entries.map((e) => e.seq), resolve, reject });
      }),
    logger: quiet,
    label: 'pipeline test reader',
  });
  cleanups.push(async () => {
    for (const call of calls) call.resolve();
    await reader.close();
    await bus.close();
  });
  let n = 0;
  const publish = () =>
    bus.publish({ namespace: 'ns', keys: [`k${n++}`], tags: [], prefix: null, version: n, action: 'update', ts: 1 });
  const progress = async () => Number(await client.hget(`${logKey}:pipeline:progress`, 'seq'));
  const pending = async () => Number(((await client.xpending(`${logKey}:stream`, 'pipeline-test')) as [number])[0]);
  /**
   * Logs one entry, starts the reader, then logs `held - 1` more, each
   * handed over while the earlier ones are held; resolves with the `seq`
   * before the first.
   */
  const startHolding = async (held: number) => {
    await publish();
    reader.start();
    await callsFor(calls, 1);
    for (let i = 1; i < held; i++) await publish();
    await callsFor(calls, held);
    return calls[0]!.seqs[0]! - 1;
  };
  return { bus, reader, calls, publish, progress, pending, logKey, startHolding };
}

const callsFor = (calls: Held[], n: number) => eventually(`${n} deliveries`, () => calls.length >= n, 10_000);

describe('purge log group reader, several batches in delivery', () => {
  it('hands batch 2 over while batch 1 is held, and acknowledges batch 2 only after batch 1', async () => {
    const { reader, calls, progress, pending, startHolding } = await setup('pipe-a');
    // Batch 2 arrives while batch 1 is still in delivery.
    const base = await startHolding(2);
    expect(calls.map((c) => c.seqs)).toEqual([[base + 1], [base + 2]]);
    expect(calls.map((c) => c.batch.loss)).toEqual([null, null]);

    // Batch 2 done first: nothing acknowledged in the log, the progress is still before batch 1.
    calls[1]!.resolve();
    // Time for an acknowledgement out of order, were it made (nothing to poll for: it must not happen).
    await new Promise((r) => setTimeout(r, 300));
    expect(await pending()).toBe(2);
    expect(await progress()).toBe(base);
    expect(reader.status().deliveredSeq).toBe(base);

    // Batch 1 done: both acknowledged, in order.
    calls[0]!.resolve();
    await eventually('both acknowledged', async () => (await pending()) === 0 && (await progress()) === base + 2);
    expect(reader.status().deliveredSeq).toBe(base + 2);
  });

  it('batch 1 fails after batch 2 was delivered: both are delivered again, from batch 1, in log order', async () => {
    const { reader, calls, publish, progress, pending, startHolding } = await setup('pipe-b');
    const base = await startHolding(2);
    calls[1]!.resolve();
    calls[0]!.reject(new Error('Kafka unreachable'));
    // A third entry logged meanwhile comes after the two re-delivered ones.
    await publish();
    await callsFor(calls, 3);
    const firstPass = calls[0]!.batch.pass;
    expect(calls[2]!.batch.pass).toBeGreaterThan(firstPass);
    expect(calls[2]!.seqs).toEqual([base + 1]);
    calls[2]!.resolve();
    await callsFor(calls, 4);
    calls[3]!.resolve();
    await callsFor(calls, 5);
    calls[4]!.resolve();
    await eventually('all acknowledged', async () => (await pending()) === 0 && (await progress()) === base + 3);
    expect(calls.slice(2).map((c) => c.seqs)).toEqual([[base + 1], [base + 2], [base + 3]]);
    expect(calls.every((c) => c.batch.loss === null)).toBe(true);
    expect(reader.status().lastError).toBeNull();
  });

  it('a replica killed with out-of-order completions: the next holder re-delivers from the first unacknowledged, no false loss', async () => {
    const a = await setup('pipe-kill-a', undefined, 900);
    const base = await a.startHolding(3);
    // Batches 3 and 2 are done, batch 1 is not: nothing may be acknowledged yet.
    a.calls[2]!.resolve();
    a.calls[1]!.resolve();
    // Time for an acknowledgement out of order, were it made (nothing to poll for: it must not happen).
    await new Promise((r) => setTimeout(r, 300));
    expect(await a.progress()).toBe(base);
    expect(await a.pending()).toBe(3);

    // The replica dies: its lease runs out (deleted here, as expiry would), and it never acknowledges again.
    const lease = `${a.logKey}:pipeline:lease`;
    await client.del(lease);
    await eventually('the replica sees its lease gone', () => !a.reader.status().leader, 5_000);

    // Another replica takes over the same log and group.
    const calls: Held[] = [];
    const b = new PurgeLogGroupReader({
      client,
      logKey: a.logKey,
      group: 'pipeline-test',
      name: 'pipeline',
      replicaId: 'pipe-kill-b',
      leaseMs: 3_000,
      blockMs: 200,
      batchSize: 1,
      maxInFlight: 3,
      deliver: async (batch) => {
        calls.push({ batch, seqs: batch.entries.map((e) => e.seq), resolve() {}, reject() {} });
      },
      logger: quiet,
      label: 'pipeline test reader b',
    });
    cleanups.push(() => b.close());
    // The dead replica must not take the lease back: it is stopped (its deliveries never settle before).
    b.start();
    await eventually('b delivered the three', () => calls.length >= 3, 10_000);
    await a.publish();
    await eventually('b delivered the fourth', () => calls.length >= 4, 10_000);
    await eventually('b acknowledged the four', async () => (await a.progress()) === base + 4, 10_000);
    // The dead replica's batches completing late must not move the progress back behind b's.
    a.calls[0]!.resolve();
    await a.reader.close();
    expect(await a.progress()).toBe(base + 4);
    expect(a.reader.status().deliveredSeq).toBe(base);
    expect(calls.map((c) => c.seqs)).toEqual([[base + 1], [base + 2], [base + 3], [base + 4]]);
    expect(calls.map((c) => c.batch.loss)).toEqual([null, null, null, null]);
    expect(await a.pending()).toBe(0);
  });
});
