import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenBucketLimiter } from '../../edge/rate-limit.ts';

describe('token bucket rate limit', () => {
  it('never admits more than burst + rate × elapsed for one caller, and a refusal says how long to wait', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 200, noNaN: true }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 1, maxLength: 300 }),
        (rate, burst, gapsMs) => {
          const limiter = new TokenBucketLimiter({ ratePerSecond: rate, burst });
          let now = 1_000_000;
          const start = now;
          let admitted = 0;
          for (const gap of gapsMs) {
            now += gap;
            const d = limiter.take('svc', now);
            if (d.ok) admitted++;
            else {
              expect(d.retryAfterMs).toBeGreaterThan(0);
              expect(d.retryAfterMs).toBeLessThanOrEqual(Math.ceil(1000 / rate));
              // After waiting as told, the next request is admitted.
              now += d.retryAfterMs;
              expect(limiter.take('svc', now).ok).toBe(true);
              admitted++;
            }
            expect(admitted).toBeLessThanOrEqual(burst + ((now - start) * rate) / 1000 + 1e-9);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('waiting retryAfterMs is enough, and callers do not share buckets', () => {
    const limiter = new TokenBucketLimiter({ ratePerSecond: 2, burst: 2 });
    expect(limiter.take('a', 0).ok).toBe(true);
    expect(limiter.take('a', 0).ok).toBe(true);
    const refused = limiter.take('a', 0);
    expect(refused).toEqual({ ok: false, retryAfterMs: 500 });
    expect(limiter.take('b', 0).ok).toBe(true);
    expect(limiter.take('a', 499).ok).toBe(false);
    expect(limiter.take('a', 1000).ok).toBe(true);
  });
});
