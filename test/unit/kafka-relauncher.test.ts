import type { ConsumerCrashEvent } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { consumerRelauncher, relaunchDelayMs } from '../../origin/kafka/consumer.ts';

/** A consumer as the relauncher sees one: its crash listeners (fired by the test) and its disconnects. */
function fakeConsumer(id: string, disconnected: string[], disconnect?: () => Promise<void>) {
  const crashListeners: ((e: ConsumerCrashEvent) => void)[] = [];
  return {
    id,
    events: { CRASH: 'consumer.crash' as const },
    on(event: 'consumer.crash', listener: (e: ConsumerCrashEvent) => void) {
      if (event === 'consumer.crash') crashListeners.push(listener);
    },
    async disconnect() {
      disconnected.push(id);
      await disconnect?.();
    },
    crash(restart: boolean) {
      const payload = { error: new Error(`${id} crashed`), restart, groupId: 'g' };
      for (const l of crashListeners) l({ id: '0', type: 'consumer.crash', timestamp: 0, payload });
    },
  };
}
type FakeConsumer = ReturnType<typeof fakeConsumer>;

/** A consumer owner as the three origin consumers hold one: each launch adopts a new consumer. */
function owner(options: { failLaunches?: number; random?: () => number } = {}) {
  const warnings: { fields: Record<string, unknown>; message: string }[] = [];
  const errors: string[] = [];
  const logger = {
    warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }),
    error: (_fields: unknown, message: string) => errors.push(message),
  } as never;
  const disconnected: string[] = [];
  let launches = 0;
  let failLaunches = options.failLaunches ?? 0;
  const consumers: FakeConsumer[] = [];
  const relauncher = consumerRelauncher<FakeConsumer>({
    name: 'test consumer',
    logger,
    random: options.random ?? (() => 0.5),
    launch: async () => {
      launches += 1;
      const c = fakeConsumer(`c${launches}`, disconnected);
      consumers.push(c);
      relauncher.adopt(c);
      if (failLaunches > 0) {
        failLaunches -= 1;
        throw new Error('broker unreachable');
      }
    },
  });
  const first = fakeConsumer('c0', disconnected);
  consumers.push(first);
  relauncher.adopt(first);
  return {
    relauncher,
    warnings,
    errors,
    disconnected,
    /** The back-off of each relaunch scheduled, ms, as logged. */
    delays: () => warnings.filter((w) => w.message === 'restarting the test consumer').map((w) => w.fields.retryInMs),
    consumers,
    launches: () => launches,
    current: () => relauncher.current?.id,
  };
}

/** Runs the timers due within `ms` and lets the relaunch's promise chain settle. */
async function advance(ms: number) {
  await vi.advanceTimersByTimeAsync(ms);
}

describe('consumerRelauncher', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the back-off doubles from the base up to the cap, jittered between half and all of each step', () => {
    const low = [0, 1, 2, 3, 4, 5, 6].map((n) => relaunchDelayMs(n, 500, 10_000, () => 0));
    const high = [0, 1, 2, 3, 4, 5, 6].map((n) => relaunchDelayMs(n, 500, 10_000, () => 0.999_999));
    expect(low).toEqual([250, 500, 1_000, 2_000, 4_000, 5_000, 5_000]);
    expect(high).toEqual([500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    // A huge attempt count neither overflows nor exceeds the cap.
    expect(relaunchDelayMs(10_000, 500, 10_000, () => 0.5)).toBe(7_500);
  });

  it('a crash kafkajs does not restart relaunches; one it restarts, or one of a replaced consumer, does not', async () => {
    const o = owner();
    o.consumers[0]!.crash(true);
    expect(vi.getTimerCount()).toBe(0);
    o.consumers[0]!.crash(false);
    expect(o.errors).toEqual(['test consumer crashed', 'test consumer crashed']);
    await advance(375);
    expect(o.current()).toBe('c1');
    // The old consumer crashing again (say, while it disconnects) is not the current one's crash.
    o.consumers[0]!.crash(false);
    expect(vi.getTimerCount()).toBe(0);
    o.consumers[1]!.crash(false);
    expect(vi.getTimerCount()).toBe(1);
  });

  it('release takes the current consumer for its owner to disconnect; a relaunch then has none to retire', async () => {
    const o = owner();
    expect(o.relauncher.release()?.id).toBe('c0');
    expect(o.current()).toBeUndefined();
    o.relauncher.schedule();
    await advance(375);
    expect(o.disconnected).toEqual([]);
    expect(o.current()).toBe('c1');
  });

  it('disconnects the crashed consumer and launches a new one once the back-off ends, logging the delay', async () => {
    const o = owner();
    o.relauncher.schedule();
    // Detached at once: the owner's own stop() would no longer see it.
    expect(o.current()).toBeUndefined();
    expect(o.warnings).toEqual([{ fields: { retryInMs: 375 }, message: 'restarting the test consumer' }]);
    await advance(374);
    expect(o.launches()).toBe(0);
    expect(o.disconnected).toEqual([]);
    await advance(1);
    expect(o.disconnected).toEqual(['c0']);
    expect(o.launches()).toBe(1);
    expect(o.current()).toBe('c1');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a second schedule while one is pending does nothing', async () => {
    const o = owner();
    o.relauncher.schedule();
    o.relauncher.schedule();
    expect(vi.getTimerCount()).toBe(1);
    await advance(10_000);
    expect(o.launches()).toBe(1);
    expect(o.delays()).toEqual([375]);
  });

  it('a failed launch is logged and retried with a longer back-off, and its consumer disconnected', async () => {
    const o = owner({ failLaunches: 2 });
    o.relauncher.schedule();
    await advance(375);
    expect(o.launches()).toBe(1);
    expect(o.warnings.map((w) => w.message)).toEqual([
      'restarting the test consumer',
      'test consumer start failed',
      'restarting the test consumer',
    ]);
    await advance(750);
    expect(o.launches()).toBe(2);
    await advance(1_500);
    expect(o.launches()).toBe(3);
    expect(o.delays()).toEqual([375, 750, 1_500]);
    expect(o.disconnected).toEqual(['c0', 'c1', 'c2']);
    expect(o.current()).toBe('c3');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('after a healthy run the back-off starts from the base again', async () => {
    const o = owner({ failLaunches: 2 });
    o.relauncher.schedule();
    await advance(375 + 750 + 1_500);
    expect(o.launches()).toBe(3);
    o.relauncher.schedule();
    expect(o.delays().at(-1)).toBe(3_000);
    await advance(3_000);
    o.relauncher.healthy();
    o.relauncher.schedule();
    expect(o.delays().at(-1)).toBe(375);
  });

  it('stop cancels a pending relaunch, leaves no timer, and disconnects the detached consumer', async () => {
    const o = owner();
    o.relauncher.schedule();
    await o.relauncher.stop();
    expect(vi.getTimerCount()).toBe(0);
    expect(o.disconnected).toEqual(['c0']);
    await advance(60_000);
    expect(o.launches()).toBe(0);
  });

  it('no relaunch is scheduled after stop, whether by a crash or by a launch failing', async () => {
    const o = owner({ failLaunches: 1 });
    o.relauncher.schedule();
    await advance(375);
    // The failed launch scheduled another; a stop now ends it.
    expect(vi.getTimerCount()).toBe(1);
    await o.relauncher.stop();
    o.relauncher.schedule();
    expect(vi.getTimerCount()).toBe(0);
    await advance(60_000);
    expect(o.launches()).toBe(1);
  });

  it('a stop while the old consumer is still disconnecting prevents the launch', async () => {
    let release = () => {};
    const slow = new Promise<void>((r) => (release = r));
    let launches = 0;
    const relauncher = consumerRelauncher<FakeConsumer>({
      name: 'test consumer',
      logger: { warn: () => {} } as never,
      random: () => 0,
      launch: async () => {
        launches += 1;
      },
    });
    relauncher.adopt(fakeConsumer('c0', [], () => slow));
    relauncher.schedule();
    await advance(250);
    await relauncher.stop().then(
      () => {},
      () => {},
    );
    release();
    await advance(60_000);
    expect(vi.getTimerCount()).toBe(0);
    expect(launches).toBe(0);
  });

  it('arm allows relaunches again after a stop, from the base delay', async () => {
    const o = owner();
    await o.relauncher.stop();
    o.relauncher.schedule();
    expect(vi.getTimerCount()).toBe(0);
    o.relauncher.arm();
    o.relauncher.schedule();
    await advance(375);
    expect(o.launches()).toBe(1);
  });
});
