import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RedisBreaker } from '../../origin/breaker.ts';

/**
 * The origin breaker's window is kept by the clock: failures older than the
 * window never count, however long the circuit sat idle (cockatiel's
 * SamplingBreaker, used before, advanced its buckets one per call and opened
 * on failures a minute old). Fake clock, real cockatiel policies.
 */
const fail = () => Promise.reject(new Error('redis down'));
const ok = () => Promise.resolve('ok');

describe('origin circuit breaker window (ICD defaults: 0.5, 60 s, 20 calls)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const breaker = () => new RedisBreaker({ callTimeoutMs: 1_000, readAttempts: 1 });
  const run = (b: RedisBreaker, call: () => Promise<string>) => b.run(call, false).catch(() => {});

  it('forgets failures older than the window after an idle gap', async () => {
    const b = breaker();
    for (let i = 0; i < 19; i++) await run(b, fail);
    vi.setSystemTime(Date.now() + 61_000);
    await run(b, fail);
    expect(b.state).toBe('closed');
    // The window now holds one failure: 19 more open it, as 20 in a row would.
    for (let i = 0; i < 18; i++) await run(b, fail);
    expect(b.state).toBe('closed');
    await run(b, fail);
    expect(b.state).toBe('open');
  });

  it('keeps failures younger than 95% of the window across an idle gap', async () => {
    const b = breaker();
    for (let i = 0; i < 19; i++) await run(b, fail);
    vi.setSystemTime(Date.now() + 56_000);
    await run(b, fail);
    expect(b.state).toBe('open');
  });

  it('counts successes in the ratio and forgets them with the window too', async () => {
    const b = breaker();
    for (let i = 0; i < 20; i++) await run(b, ok);
    for (let i = 0; i < 19; i++) await run(b, fail);
    expect(b.state).toBe('closed'); // 19 of 39 < 0.5
    await run(b, fail);
    expect(b.state).toBe('open'); // 20 of 40 = 0.5
    const later = breaker();
    for (let i = 0; i < 20; i++) await run(later, ok);
    vi.setSystemTime(Date.now() + 61_000);
    for (let i = 0; i < 19; i++) await run(later, fail);
    expect(later.state).toBe('closed'); // 19 calls in the window: below the minimum
    await run(later, fail);
    expect(later.state).toBe('open'); // the old successes no longer dilute the ratio
  });
});
