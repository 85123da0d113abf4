import { afterEach, describe, expect, it, vi } from 'vitest';
import { LockService, lockWaitBackoffMs, maxLockWaitSeconds } from '../../origin/locks/lock-service.ts';
import type { LockStore } from '../../origin/locks/lock-store.ts';
import { CacheError } from '../../shared/errors.ts';

/** A store whose lock is always held, lapsing at `holderExpiresAtMs`; counts acquire calls. */
function heldStore(holderExpiresAtMs: () => number): LockStore & { calls: number } {
  const store = {
    calls: 0,
    async acquire() {
      store.calls += 1;
      return { acquired: false as const, holder: { token: 7, expiresAtMs: holderExpiresAtMs() } };
    },
    renew: async () => null,
    release: async () => ({ released: false, atUs: 0 }),
    inspect: async () => null,
  };
  return store;
}

/**
 * A service over a {@link heldStore} whose holder lapses `holderLeftMs` after each poll, on a fake clock
 * that the fake sleep advances; `delays` records each pause.
 */
function onFakeClock(holderLeftMs: number, maxWaitSeconds?: number) {
  let nowMs = 1_000_000;
  vi.spyOn(Date, 'now').mockImplementation(() => nowMs);
  const store = heldStore(() => nowMs + holderLeftMs);
  const delays: number[] = [];
  const service = new LockService({
    store,
    ...(maxWaitSeconds === undefined ? {} : { maxWaitSeconds }),
    sleep: async (ms) => {
      delays.push(ms);
      nowMs += ms;
    },
  });
  return { store, delays, service };
}

describe('LockService waiting acquire', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('polls with bounded, growing back-off and gives up with LOCK_001 at the wait deadline', async () => {
    const { store, delays, service } = onFakeClock(60_000);
    const error = await service.acquire('ns', 'job', 30, 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CacheError);
    expect((error as CacheError).code).toBe('LOCK_001');
    expect((error as CacheError).status).toBe(409);
    // Every pause is between 1 ms and the cap; together they cover the wait without overshooting it.
    for (const ms of delays) {
      expect(ms).toBeGreaterThanOrEqual(1);
      expect(ms).toBeLessThanOrEqual(lockWaitBackoffMs.max);
    }
    expect(delays.reduce((a, b) => a + b, 0)).toBe(2_000);
    // Not a busy loop: at least wait / cap polls, far fewer than one per millisecond.
    expect(store.calls).toBeGreaterThanOrEqual(2_000 / lockWaitBackoffMs.max);
    expect(store.calls).toBeLessThan(200);
  });

  it('caps the wait at 30 s and never sleeps past the holder’s expiry', async () => {
    const { delays, service } = onFakeClock(3);
    await expect(service.acquire('ns', 'job', 30, 3_600)).rejects.toMatchObject({ code: 'LOCK_001' });
    expect(delays.reduce((a, b) => a + b, 0)).toBe(maxLockWaitSeconds * 1000);
    for (const ms of delays) expect(ms).toBeLessThanOrEqual(3);
  });

  it('waits no longer than a lower configured cap (LOCK_MAX_WAIT_SECONDS)', async () => {
    const { delays, service } = onFakeClock(60_000, 1.5);
    await expect(service.acquire('ns', 'job', 30, 20)).rejects.toMatchObject({ code: 'LOCK_001' });
    expect(delays.reduce((a, b) => a + b, 0)).toBe(1_500);
  });

  it('does not wait at all without `wait`', async () => {
    const store = heldStore(() => Date.now() + 60_000);
    const service = new LockService({
      store,
      sleep: async () => {
        throw new Error('slept');
      },
    });
    await expect(service.acquire('ns', 'job', 30)).rejects.toMatchObject({ code: 'LOCK_001' });
    expect(store.calls).toBe(1);
  });
});
