import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type BreakerState, CircuitOpenError, RedisBreaker } from '../../origin/breaker.ts';

/**
 * The breaker is cockatiel's; its clock is `Date.now()` and `setTimeout`,
 * which vitest's fake timers replace, so these properties drive the real
 * policies through simulated time — no sleeps.
 */
type Step = { kind: 'call'; ok: boolean } | { kind: 'probe'; ok: boolean } | { kind: 'advance'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('call' as const), ok: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('probe' as const), ok: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 15_000 }) }),
  },
);

const settings = fc.record({
  threshold: fc.double({ min: 0.05, max: 0.95, noNaN: true }),
  // Whole seconds, as BREAKER_WINDOW_SECONDS gives them.
  windowMs: fc.integer({ min: 1, max: 60 }).map((s) => s * 1000),
  minRequests: fc.integer({ min: 1, max: 30 }),
  halfOpenAfterMs: fc.integer({ min: 1, max: 10_000 }),
});

const outcome = (ok: boolean) => (ok ? Promise.resolve('ok') : Promise.reject(new Error('redis down')));

describe('circuit breaker (RedisBreaker: cockatiel policies with its time-window breaker, fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('never lets a call through while not closed, and always lets a probe through once the cool-down has passed', async () => {
    await fc.assert(
      fc.asyncProperty(settings, fc.array(step, { minLength: 1, maxLength: 120 }), async (options, steps) => {
        const breaker = new RedisBreaker({ ...options, callTimeoutMs: 1_000, readAttempts: 1 });
        let openedAtMs = Number.NaN;
        breaker.onStateChange((state: BreakerState) => {
          if (state === 'open') openedAtMs = Date.now();
        });
        for (const s of steps) {
          if (s.kind === 'advance') {
            vi.setSystemTime(Date.now() + s.ms);
            continue;
          }
          const before = breaker.state;
          let invoked = false;
          const call = () => {
            invoked = true;
            return outcome(s.ok);
          };
          if (s.kind === 'call') {
            const error = await breaker.run(call, false).then(
              () => null,
              (e: unknown) => e,
            );
            if (before !== 'closed') {
              expect(invoked).toBe(false);
              expect(error).toBeInstanceOf(CircuitOpenError);
            } else {
              expect(invoked).toBe(true);
            }
          } else {
            // Judged before the probe: a failed half-open probe re-opens the circuit and restarts the cool-down.
            const cooled = Date.now() - openedAtMs >= options.halfOpenAfterMs;
            const succeeded = await breaker.probe(call);
            if (before === 'open') {
              expect(invoked).toBe(cooled);
              if (cooled) expect(breaker.state).toBe(s.ok ? 'closed' : 'open');
            }
            if (before === 'closed') expect(invoked).toBe(true);
            expect(succeeded).toBe(invoked && s.ok);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('opens exactly when the window holds min_requests calls and the failure ratio reaches the threshold', async () => {
    await fc.assert(
      fc.asyncProperty(settings, fc.array(fc.boolean(), { minLength: 1, maxLength: 60 }), async (options, oks) => {
        const breaker = new RedisBreaker({ ...options, callTimeoutMs: 1_000, readAttempts: 1 });
        let failures = 0;
        let total = 0;
        for (const ok of oks) {
          if (breaker.state !== 'closed') break;
          await breaker.run(() => outcome(ok), false).catch(() => {});
          total += 1;
          if (!ok) failures += 1;
          // cockatiel decides on each failure, within one window (no time passes here).
          // ICD: open at an error rate ≥ threshold (tolerance for float rounding of threshold × total).
          const shouldOpen = !ok && total >= options.minRequests && failures >= options.threshold * total - 1e-6;
          if (shouldOpen) expect(breaker.state).toBe('open');
          else if (ok || total < options.minRequests) expect(breaker.state).toBe('closed');
        }
      }),
      { numRuns: 200 },
    );
  });
});
