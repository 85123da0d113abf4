import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TaskCancelledError } from 'cockatiel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RedisBreaker } from '../../origin/breaker.ts';

/**
 * The origin breaker's per-call timeout and read retries, kept by the breaker
 * itself (calls of one millisecond share a signal and a timer) rather than by
 * cockatiel's per-call `timeout` and `retry` policies: a call past
 * `callTimeoutMs` rejects with `TaskCancelledError`, aborts its signal and
 * counts as a failure; reads are retried, writes are not. Fake clock.
 */
const hang = () => new Promise<string>(() => {});

describe('origin circuit breaker timeout and retries', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('times a hanging call out after callTimeoutMs, not before, aborting its signal', async () => {
    const b = new RedisBreaker({ callTimeoutMs: 300, readAttempts: 1 });
    let signal: AbortSignal | undefined;
    let outcome: unknown;
    void b
      .run((s) => {
        signal = s;
        return hang();
      }, false)
      .then(
        (value) => {
          outcome = value;
        },
        (error: unknown) => {
          outcome = error;
        },
      );
    await vi.advanceTimersByTimeAsync(299);
    expect(outcome).toBeUndefined();
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(2);
    expect(outcome).toBeInstanceOf(TaskCancelledError);
    expect(signal?.aborted).toBe(true);
  });

  it('leaves a call that settles in time alone, and its slice mates still time out', async () => {
    const b = new RedisBreaker({ callTimeoutMs: 300, readAttempts: 1 });
    let finish: (value: string) => void = () => {};
    const quick = b.run(() => new Promise<string>((resolve) => (finish = resolve)), false);
    const slow = b.run(hang, false).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(100);
    finish('ok');
    await vi.advanceTimersByTimeAsync(300);
    await expect(quick).resolves.toBe('ok');
    expect(await slow).toBeInstanceOf(TaskCancelledError);
  });

  it('counts a timeout as a failure: enough of them open the circuit', async () => {
    const b = new RedisBreaker({ callTimeoutMs: 300, readAttempts: 1, minRequests: 3, threshold: 0.5 });
    const calls = [1, 2, 3].map(() => b.run(hang, false).catch((error: unknown) => error));
    await vi.advanceTimersByTimeAsync(301);
    for (const outcome of await Promise.all(calls)) expect(outcome).toBeInstanceOf(TaskCancelledError);
    expect(b.state).toBe('open');
  });

  it('retries a read with backoff (readAttempts in all) but never a write', async () => {
    const b = new RedisBreaker({ callTimeoutMs: 300, readAttempts: 3, retryInitialDelayMs: 20 });
    let readCalls = 0;
    const read = b.run(async () => {
      readCalls += 1;
      if (readCalls < 3) throw new Error('redis blip');
      return 'value';
    }, true);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(read).resolves.toBe('value');
    expect(readCalls).toBe(3);

    let writeCalls = 0;
    const write = b
      .run(async () => {
        writeCalls += 1;
        throw new Error('redis blip');
      }, false)
      .catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await write).toBeInstanceOf(Error);
    expect(writeCalls).toBe(1);
  });

  it('retries a timed-out read, then gives up with TaskCancelledError', async () => {
    const b = new RedisBreaker({ callTimeoutMs: 300, readAttempts: 2, retryInitialDelayMs: 20 });
    let calls = 0;
    const read = b
      .run(() => {
        calls += 1;
        return hang();
      }, true)
      .catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(301);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toBe(2);
    expect(await read).toBeInstanceOf(TaskCancelledError);
  });

  it('a call that throws synchronously fails like one that rejects', async () => {
    const b = new RedisBreaker({ callTimeoutMs: 300, readAttempts: 1 });
    const boom = new Error('sync');
    await expect(
      b.run(() => {
        throw boom;
      }, false),
    ).rejects.toBe(boom);
  });

  it('a probe that hangs times out and reports false', async () => {
    const b = new RedisBreaker({ callTimeoutMs: 300 });
    const probed = b.probe(hang);
    await vi.advanceTimersByTimeAsync(301);
    await expect(probed).resolves.toBe(false);
  });
});

describe('origin circuit breaker timeout, real process', () => {
  it('a running call keeps the process alive until it times out (its timer is shared, not dropped)', async () => {
    const breaker = new URL('../../origin/breaker.ts', import.meta.url).href;
    // Nothing else keeps this process alive: only the running call's timeout can make it print.
    const script = `
      import { RedisBreaker } from ${JSON.stringify(breaker)};
      const b = new RedisBreaker({ callTimeoutMs: 200, readAttempts: 1 });
      console.log(await b.run(() => Promise.resolve('settled'), false));
      b.run(() => new Promise(() => {}), false).catch((e) => console.log(e.constructor.name));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    expect(stdout.trim().split('\n')).toEqual(['settled', 'TaskCancelledError']);
  });
});
